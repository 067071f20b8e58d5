"""Output piped into `head` (or any reader that stops early) ends quietly: no traceback.

`ddns-wizard providers --json | head -1` closes the pipe while the tool still writes;
the user should see the first line and nothing else. These commands touch no network.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run_into_closed_pipe(args: list[str], read_first: int) -> tuple[bytes, str]:
    """Run the CLI with stdout a pipe whose reader takes ``read_first`` bytes, then goes away."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="100")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wizard", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT
    )
    assert proc.stdout is not None and proc.stderr is not None
    head = proc.stdout.read(read_first) if read_first else b""
    proc.stdout.close()  # the reader exits, like `head` does
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    return head, err


@pytest.mark.parametrize(
    "args", [["providers", "--json"], ["providers"], ["providers", "cloudflare"], ["--help"], ["ports", "--help"]]
)
@pytest.mark.parametrize("read_first", [0, 1])
def test_a_closed_pipe_is_not_a_traceback(args: list[str], read_first: int) -> None:
    head, err = _run_into_closed_pipe(args, read_first)
    assert "Traceback" not in err and "Exception ignored" not in err and "BrokenPipe" not in err, err
    assert err == "", err
    if read_first:
        assert head
