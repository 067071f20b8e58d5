"""Loading the configuration for a command, with the warnings a user needs (issue 19)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def load(args: argparse.Namespace, *, needs_file: bool = False) -> Any:
    """The configuration ``--config`` (or the default path) names.

    ``needs_file``: the command works on configured hostnames, so a ``--config`` file that does
    not exist is an error that says so (not "no hostnames configured"). A file holding secrets
    that other users can read gets a warning with the ``chmod`` that fixes it."""
    from checks.config import load_config

    explicit = getattr(args, "config", None)
    config = load_config(explicit, must_exist=needs_file and explicit is not None)
    warn_if_readable(config)
    return config


def loose_mode(path: Any) -> int | None:
    """The file's permission bits when group or others may read or write it, else None."""
    try:
        mode = os.stat(path).st_mode & 0o777
    except (OSError, TypeError):
        return None
    return mode if mode & 0o077 else None


def warn_if_readable(config: Any) -> None:
    path = getattr(config, "path", None)
    if path is None or not any(config.secret_values()):
        return
    mode = loose_mode(path)
    if mode is None:
        return
    print(
        f"ddns-wizard: warning: {path} holds secrets and other users can read it (mode {mode:04o}). "
        f"Fix it with: chmod 600 {path}",
        file=sys.stderr,
    )
