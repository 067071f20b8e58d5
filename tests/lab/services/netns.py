"""Run a function with its sockets inside a network namespace, from this process.

setns(CLONE_NEWNET) only moves the calling thread, so a short-lived worker thread
enters the namespace, runs the function (blocking sockets, dnspython sync
queries, ...) and exits; sockets created there stay in that namespace.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _enter(ns: str) -> None:
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({ns}): {os.strerror(err)}")
    finally:
        os.close(fd)


def run_in_netns(ns: str, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Call fn(*args, **kwargs) in a fresh thread inside namespace ``ns``; return its result."""
    box: dict[str, object] = {}

    def worker() -> None:
        try:
            _enter(ns)
            box["result"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=worker, name=f"netns-{ns}", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]
