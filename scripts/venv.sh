# Sourced by scripts/test.sh and scripts/lint.sh (not run on its own): make
# sure .venv holds this checkout installed with everything the tests and the
# linters need, one venv for both. Callers cd to the checkout first. Sets
# $here and $venv.
here=$(pwd)
venv="$here/.venv"
if [ ! -x "$venv/bin/pytest" ] || [ ! -x "$venv/bin/ruff" ] || [ ! -x "$venv/bin/mypy" ] \
    || [ ! -e "$venv/.installed-test" ] || [ "$here/pyproject.toml" -nt "$venv/.installed-test" ]; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$here[test,server,lint]"
    touch "$venv/.installed-test"
fi
