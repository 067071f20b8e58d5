"""Letting go of asyncio tasks nobody will await (hedged queries, the losers of a race)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # marks it retrieved: no "Task exception was never retrieved" on stderr


def drop(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel tasks nobody will await, and swallow what they end with.

    A cancelled hedged query may already have finished with NXDOMAIN (or finish with it
    before the cancel lands): unretrieved, asyncio prints its traceback on stderr when the
    task is collected (seen in a 200-host update). Their failures are data, not news."""
    for task in list(tasks):
        if task.done():
            _retrieve(task)
        else:
            task.cancel()
            task.add_done_callback(_retrieve)
