"""The updater's history: one JSON object per line (JSON Lines), appended safely.

Every record is written with a single ``write()`` on a descriptor opened with
``O_APPEND``, so concurrent writers never interleave inside a line; the records of
a round are ``fsync``'d together at its end (``History.sync``/``close``), so a round
that was reported written survives a power cut.
A crash in the middle of a write can still leave a torn last line: reading
tolerates it (the line is skipped and reported), and the next append starts on
a fresh line so the torn bytes never glue onto a good record.

Records carry ``ts`` (ISO 8601 UTC), ``t`` (epoch seconds) and ``event``:
``start``, ``stop``, ``address`` (public address changed), ``check`` (what DNS
serves), ``update`` (a provider's answer), ``verify``, ``stopped`` (fatal:
the hostname is left alone until the configuration changes), ``reach`` (``[watch]
reach``: the end-to-end check's verdict, per port outside/hairpin/TLS, checks/reach.py).
Messages are redacted before they are written (the file is also mode 0600).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checks.files import NotRegularFile, check_regular, describe_mode, read_regular_file
from checks.redact import Redactor

HISTORY_NAME = "history.jsonl"


def check_history_path(path: Path) -> str | None:
    """Why ``path`` cannot be the history (a FIFO, a device, a directory), or None."""
    try:
        check_regular(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return (
            f"history file {path} is {exc}"
            if isinstance(exc, NotRegularFile)
            else f"history file {path} cannot be used: {exc.strerror or exc}"
        )
    return None


def default_history_path() -> Path:
    """``history.jsonl`` in the platform's user state directory."""
    from platformdirs import user_state_dir  # lazy: only the watch needs it

    return Path(user_state_dir("ddns-wizard")) / HISTORY_NAME


@dataclass(frozen=True)
class HistoryRead:
    records: tuple[dict[str, Any], ...]
    problems: tuple[str, ...] = ()  # "line 12: ... ignored" for each unreadable line

    @property
    def torn(self) -> bool:
        return bool(self.problems)


# The type each field must have when present (extra fields are kept for later versions).
_STR_OR_NONE = (
    "ts",
    "hostname",
    "provider",
    "previous",
    "sent",
    "result",
    "code",
    "message",
    "fingerprint",
    "serves",
    "expected",
    "error",
    "problem",
    "ipv4",
    "ipv6",
)
_BOOL_OR_NONE = ("fatal", "ok")
_MAX_DELAY_S = 366 * 24 * 3600  # a retry delay beyond a year is not one we wrote
MAX_LINE_BYTES = 64 * 1024  # our records are a few hundred bytes


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def record_problem(value: Any) -> str | None:
    """Why a decoded line is not a usable history record, or None.

    The readers (``watch`` restoring its state, ``update`` consulting the last send)
    trust the types below; a record that breaks them (``"t": "x"``, ``"t": 1e400``,
    which JSON reads as infinity) is reported and skipped, never acted on.
    """
    if not isinstance(value, dict):
        return "not a JSON object"
    if not isinstance(value.get("event"), str):
        return "no event name"
    if not _finite_number(value.get("t")):
        return f"'t' is not a time in seconds ({_shown(value.get('t'))})"
    for key in _STR_OR_NONE:
        if value.get(key) is not None and not isinstance(value[key], str):
            return f"'{key}' is not text ({_shown(value[key])})"
    for key in _BOOL_OR_NONE:
        if value.get(key) is not None and not isinstance(value[key], bool):
            return f"'{key}' is not true/false ({_shown(value[key])})"
    delay = value.get("retry_after_s")
    if delay is not None and not (_finite_number(delay) and 0 <= delay <= _MAX_DELAY_S):
        return f"'retry_after_s' is not a delay in seconds ({_shown(delay)})"
    return None


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (ValueError, TypeError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def read_history(path: Path) -> HistoryRead:
    """Every usable record; unreadable lines (a torn write) and records of the wrong shape
    are skipped and reported.  A history that is not a regular file (a FIFO, a device)
    is reported, not read: reading a FIFO would wait for a writer forever."""
    try:
        raw = read_regular_file(path, limit=None)
    except FileNotFoundError:
        return HistoryRead(())
    except NotRegularFile as exc:
        return HistoryRead((), (f"{path}: {exc}; not read",))
    except OSError as exc:
        return HistoryRead((), (f"{path}: cannot read it ({exc.strerror or exc}); not read",))
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    lines = raw.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            if len(line) > MAX_LINE_BYTES:
                raise ValueError("line too long")
            value = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            last = number == len(lines) or (number == len(lines) - 1 and lines[-1] == b"")
            why = "the last write was cut short (probably a crash or power loss)" if last else "not a JSON record"
            problems.append(f"{path}, line {number}: {why}; ignored")
            continue
        problem = record_problem(value)
        if problem is None:
            records.append(value)
        else:
            problems.append(f"{path}, line {number}: {problem}; ignored")
    return HistoryRead(tuple(records), tuple(problems))


class History:
    """Append-only writer. ``append`` returns the record as written."""

    def __init__(
        self,
        path: Path,
        *,
        redactor: Redactor | None = None,
        clock: Callable[[], float] = time.time,
        fsync_each: bool = False,
    ) -> None:
        """Records reach the disk at ``sync()`` and ``close()`` (one fsync for a round's
        records, not one per line: 200 hosts' lines cost 200 fsyncs), or after every
        line with ``fsync_each``. Each line is one ``write`` either way."""
        self.path = path
        self.redactor = redactor or Redactor()
        self.clock = clock
        self.fsync_each = fsync_each
        self._dirty = False
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # O_NONBLOCK: a FIFO put in the history's place fails at once instead of waiting for a reader.
            fd = os.open(
                self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, 0o600
            )
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                os.close(fd)
                raise NotRegularFile(self.path, f"{describe_mode(mode)}, not a regular file")
            # A torn last line (no trailing newline) must not swallow our first record.
            size = os.fstat(fd).st_size
            if size > 0:
                with open(self.path, "rb") as fh:
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":
                        os.write(fd, b"\n")
            self._fd = fd
        return self._fd

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        now = self.clock()
        record: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="seconds"),
            "t": round(now, 3),
            "event": event,
        }
        record.update(fields)
        record = self.redactor.data(record)
        line = (json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")
        fd = self._open()
        os.write(fd, line)  # one write per record: O_APPEND keeps lines whole
        if self.fsync_each:
            os.fsync(fd)
        else:
            self._dirty = True
        return record

    def read(self) -> HistoryRead:
        return read_history(self.path)

    def sync(self) -> None:
        """Make the records written so far durable (the end of a round)."""
        if self._fd is not None and self._dirty:
            os.fsync(self._fd)
            self._dirty = False

    def close(self) -> None:
        if self._fd is not None:
            try:
                self.sync()
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def last_of(records: Iterable[dict[str, Any]], hostname: str, events: tuple[str, ...]) -> dict[str, Any] | None:
    found = None
    for r in records:
        if r.get("hostname") == hostname and r.get("event") in events:
            found = r
    return found
