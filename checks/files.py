"""Reading the files a user points the tool at, without hanging or reading forever.

``--config``, ``--history`` and ``$DDNS_WIZARD_CONFIG`` may name anything: a FIFO
(opening it for reading waits for a writer forever), a device (``/dev/zero`` never
ends), a directory, a multi-gigabyte file.  :func:`read_regular_file` accepts only a
regular file of bounded size and says plainly what else it found; it never blocks
on open (``O_NONBLOCK``) and never makes a terminal the controlling one
(``O_NOCTTY``).
"""

from __future__ import annotations

import errno
import os
import stat

MAX_CONFIG_BYTES = 1024 * 1024  # a configuration is a few kB; 1 MiB is generous


class NotRegularFile(OSError):
    """The path exists but is not a regular file (or is too large to be what it claims)."""

    def __init__(self, path: str | os.PathLike[str], what: str) -> None:
        super().__init__(errno.EINVAL, what, str(path))
        self.what = what

    def __str__(self) -> str:
        return self.what


def describe_mode(mode: int) -> str:
    """``a FIFO (named pipe)``, ``a character device`` ... for a stat mode that is not a regular file."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_regular(path: str | os.PathLike[str], *, limit: int | None = None) -> None:
    """Raise :class:`NotRegularFile` unless ``path`` (if it exists) is a regular file within ``limit`` bytes.

    ``FileNotFoundError`` passes through; a missing file is the caller's business.
    """
    st = os.stat(path)
    _check_stat(path, st, limit)


def _check_stat(path: str | os.PathLike[str], st: os.stat_result, limit: int | None) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFile(path, f"{describe_mode(st.st_mode)}, not a regular file")
    if limit is not None and st.st_size > limit:
        raise NotRegularFile(path, f"{st.st_size} bytes, more than the {limit} a file of this kind can be")


def read_regular_file(path: str | os.PathLike[str], *, limit: int | None = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes.

    Raises ``FileNotFoundError``, :class:`NotRegularFile` or another ``OSError``.
    The type is checked before opening and again on the open descriptor (the path
    may be swapped in between); at most ``limit`` + 1 bytes are ever read.
    """
    check_regular(path, limit=limit)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        _check_stat(path, os.fstat(fd), limit)
        chunks: list[bytes] = []
        total = 0
        while True:
            want = 1 << 16 if limit is None else min(1 << 16, limit + 1 - total)
            if want <= 0:
                raise NotRegularFile(path, f"more than the {limit} bytes a file of this kind can be")
            chunk = os.read(fd, want)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
