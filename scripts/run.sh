#!/bin/sh
# Set up (once) and run ddns-wizard: a virtual environment in .venv with the
# tool installed from this checkout. Arguments go to ddns-wizard.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
venv="$here/.venv"
if [ ! -x "$venv/bin/ddns-wizard" ] || [ "$here/pyproject.toml" -nt "$venv/.installed" ]; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$here"
    touch "$venv/.installed"
fi
exec "$venv/bin/ddns-wizard" "$@"
