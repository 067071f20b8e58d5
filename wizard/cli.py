"""The ``ddns-wizard`` command line.

Start-up is kept lean: this module imports only argparse and the small command
modules (each imports its engine pieces inside ``run``); Textual is imported only
when the wizard itself is launched.  Exit status (DESIGN.md): 0 the command did its
job, whatever it found; 2 usage or configuration error; 1 anything else.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from checks import __version__
from checks.errors import ConfigError, DdnsWizardError, UsageError

from .commands import COMMANDS

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ddns-wizard",
        description=(
            "Get a home server reachable under a dynamic DNS name, and find out why it is "
            "not. Without a command, opens the interactive wizard."
        ),
    )
    parser.add_argument("--version", action="version", version=f"ddns-wizard {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="configuration file (default: $DDNS_WIZARD_CONFIG, else the platform config directory)",
    )
    parser.add_argument("--debug", action="store_true", help="show internal tracebacks (secrets are still redacted)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name, help_text in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        # Global options are accepted after the command too (`ddns-wizard update --config F`);
        # SUPPRESS keeps a value given before the command when this one is absent.
        p.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="configuration file")
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        module = _command_module(module_name)
        module.add_arguments(p)
        p.set_defaults(_module=module_name)
    return parser


def _command_module(module_name: str) -> ModuleType:
    import importlib

    return importlib.import_module(f"wizard.commands.{module_name}")


def _redact_text(text: str, args: argparse.Namespace) -> str:
    """Remove configured secrets from an error message before it is printed."""
    try:
        from checks.config import load_config
        from checks.redact import Redactor

        cfg = load_config(getattr(args, "config", None))
        return Redactor.from_config(cfg).text(text)
    except Exception:  # the config itself may be the problem: fall back to generic masking
        try:
            from checks.redact import Redactor

            return Redactor().text(text)
        except Exception:
            return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            from .commands import tui

            return tui.run(args)
        module = _command_module(args._module)
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ConfigError, UsageError) as exc:
        print(f"ddns-wizard: error: {_redact_text(str(exc), args)}", file=sys.stderr)
        return EXIT_USAGE
    except DdnsWizardError as exc:
        print(f"ddns-wizard: error: {_redact_text(str(exc), args)}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:
        # Output piped into `head` and the like: not an error worth a message.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except Exception as exc:  # never a raw traceback in front of a user
        if args.debug:
            import traceback

            print(_redact_text(traceback.format_exc(), args), file=sys.stderr)
        print(
            f"ddns-wizard: internal error: {type(exc).__name__}: {_redact_text(str(exc), args)}\n"
            "Run again with --debug for details, and please report it.",
            file=sys.stderr,
        )
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
