"""The updater's history: one JSON object per line (JSON Lines), appended safely.

Every record is written with a single ``write()`` on a descriptor opened with
``O_APPEND`` and then ``fsync``'d, so concurrent writers never interleave
inside a line and a record that was reported written survives a power cut.
A crash in the middle of a write can still leave a torn last line: reading
tolerates it (the line is skipped and reported), and the next append starts on
a fresh line so the torn bytes never glue onto a good record.

Records carry ``ts`` (ISO 8601 UTC), ``t`` (epoch seconds) and ``event``:
``start``, ``stop``, ``address`` (public address changed), ``check`` (what DNS
serves), ``update`` (a provider's answer), ``verify``, ``stopped`` (fatal:
the hostname is left alone until the configuration changes).
Messages are redacted before they are written (the file is also mode 0600).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from .redact import Redactor

HISTORY_NAME = "history.jsonl"


def default_history_path() -> Path:
    """``history.jsonl`` in the platform's user state directory."""
    from platformdirs import user_state_dir   # lazy: only the watch needs it

    return Path(user_state_dir("ddns-wizard")) / HISTORY_NAME


@dataclass(frozen=True)
class HistoryRead:
    records: tuple[dict[str, Any], ...]
    problems: tuple[str, ...] = ()     # "line 12: ... ignored" for each unreadable line

    @property
    def torn(self) -> bool:
        return bool(self.problems)


def read_history(path: Path) -> HistoryRead:
    """Every readable record; unreadable lines (a torn write) are skipped and reported."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return HistoryRead(())
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    lines = raw.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            last = number == len(lines) or (number == len(lines) - 1 and lines[-1] == b"")
            why = ("the last write was cut short (probably a crash or power loss)" if last
                   else "not a JSON record")
            problems.append(f"{path}, line {number}: {why}; ignored")
            continue
        if isinstance(value, dict):
            records.append(value)
        else:
            problems.append(f"{path}, line {number}: not a JSON object; ignored")
    return HistoryRead(tuple(records), tuple(problems))


class History:
    """Append-only writer. ``append`` returns the record as written."""

    def __init__(self, path: Path, *, redactor: Redactor | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.redactor = redactor or Redactor()
        self.clock = clock
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
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
            "ts": dt.datetime.fromtimestamp(now, dt.timezone.utc).isoformat(timespec="seconds"),
            "t": round(now, 3),
            "event": event,
        }
        record.update(fields)
        record = self.redactor.data(record)
        line = (json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")
        fd = self._open()
        os.write(fd, line)     # one write per record: O_APPEND keeps lines whole
        os.fsync(fd)
        return record

    def read(self) -> HistoryRead:
        return read_history(self.path)

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def last_of(records: Iterable[dict[str, Any]], hostname: str, events: tuple[str, ...]) -> dict[str, Any] | None:
    found = None
    for r in records:
        if r.get("hostname") == hostname and r.get("event") in events:
            found = r
    return found
