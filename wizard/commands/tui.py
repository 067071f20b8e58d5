"""Launch the Textual wizard (the only place Textual gets imported from the CLI)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


def run(args: argparse.Namespace) -> int:
    from checks.config import load_config
    from checks.errors import UsageError

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "the wizard needs a terminal; for scripts use the commands "
            "(ddns-wizard diagnose --json, ports check, update, verify ...)"
        )
    config = load_config(getattr(args, "config", None))

    from ..engine import RealEngine
    from ..tui.app import WizardApp

    light = os.environ.get("DDNS_WIZARD_THEME", "").lower() == "light"
    with library_output_off_screen():
        WizardApp(RealEngine(config), config, light=light).run()
    return 0


@contextmanager
def library_output_off_screen() -> Iterator[None]:
    """Keep what C libraries print from scribbling over the wizard's screen.

    Textual draws on stderr (``sys.__stderr__``, fd 2). Libraries print to fd 2 too:
    miniupnpc says "connect: Connection refused" for every call to a router that
    stopped answering, and those lines would land in the middle of the picture.
    While the wizard runs, Textual draws on its own duplicate of the terminal and
    fd 2 points at a temporary file; what was printed there is shown after the
    screen is gone (repeated lines once, with a count), so nothing is lost — a crash
    report included.
    """
    import tempfile

    original = sys.__stderr__
    if original is None:
        yield
        return
    try:
        saved_fd = os.dup(2)
    except OSError:  # no fd 2 at all: nothing to protect
        yield
        return
    terminal = os.fdopen(os.dup(2), "w", encoding=original.encoding or "utf-8", errors=original.errors or "replace")
    stray = tempfile.TemporaryFile()  # noqa: SIM115  (closed in the finally below, once what it caught is shown)
    sys.stderr.flush()
    os.dup2(stray.fileno(), 2)
    # What Textual's driver draws on; typeshed marks sys.__stderr__ Final, swapping it is the point here.
    sys.__stderr__ = terminal  # type: ignore[misc]
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        terminal.flush()
        sys.__stderr__ = original  # type: ignore[misc]
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        terminal.close()
        stray.seek(0)
        printed = stray.read().decode("utf-8", "replace")
        stray.close()
        if printed.strip():
            sys.stderr.write(collapse_repeats(printed))
            sys.stderr.flush()


def collapse_repeats(text: str) -> str:
    """Consecutive identical lines once, with a count ("connect: Connection refused (×7)")."""
    out: list[str] = []
    previous: str | None = None
    count = 0
    for line in [*text.splitlines(), None]:
        if line == previous:
            count += 1
            continue
        if previous is not None:
            out.append(previous + (f" (×{count})" if count > 1 else ""))
        previous, count = line, 1
    return "\n".join(out) + "\n"
