"""Import contracts: the layers of the tree hold (issue 14).

- ``checks/`` (the engine) never imports the UI (``wizard``, ``textual``, ``rich``) nor the probe
  server's HTTP stack (``probeserver.server``, ``starlette``, ``uvicorn``): each engine module is
  imported alone in a fresh interpreter and ``sys.modules`` is inspected afterwards (harlequin
  does the same).  The one thing the engine takes from ``probeserver`` is ``probeserver.wire``.
- ``probeserver/`` is a deployable of its own: it never imports ``wizard`` or ``checks``, and its
  wire module is standard library only.
- Inside the engine, read from the source (so lazy imports inside functions count too):
  probes are the bottom layer above the shared helpers; port mapping sits on the probes; the port
  check on both; DNS and DDNS never reach into the port check; nothing imports the diagnosis
  runner; the shared helpers at the top import no room.
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import checks
import probeserver

REPO = Path(__file__).resolve().parent.parent
FORBIDDEN = ("textual", "rich", "wizard", "starlette", "uvicorn")
FORBIDDEN_MODULES = ("probeserver.server",)

ENGINE_MODULES = sorted(m.name for m in pkgutil.walk_packages(checks.__path__, prefix="checks."))
SERVER_MODULES = sorted(m.name for m in pkgutil.walk_packages(probeserver.__path__, prefix="probeserver."))


def _imports_in_fresh_interpreter(module: str) -> list[str]:
    code = f"import sys, importlib\nimportlib.import_module({module!r})\nprint(','.join(sorted(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().split(",")


@pytest.mark.parametrize("module", ENGINE_MODULES)
def test_engine_module_imports_no_ui_and_no_server(module: str) -> None:
    loaded = _imports_in_fresh_interpreter(module)
    bad = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN or m in FORBIDDEN_MODULES)
    assert bad == [], f"{module} pulls in {bad}"


def test_the_wire_protocol_is_standard_library_only() -> None:
    loaded = _imports_in_fresh_interpreter("probeserver.wire")
    ours = sorted(m for m in loaded if m.split(".")[0] in (*FORBIDDEN, "checks", "httpx", "dns"))
    assert ours == []


# ------------------------------------------------------------------ layers, from the source


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function; ``from pkg import mod``
    counts as ``pkg.mod`` (not as ``pkg``), ``from mod import name`` as ``mod``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:
                sub = REPO / base.replace(".", "/") / a.name
                out.add(f"{base}.{a.name}" if sub.with_suffix(".py").exists() or sub.is_dir() else base)
    return out


def _sources(package: str) -> list[Path]:
    return sorted((REPO / package.replace(".", "/")).rglob("*.py"))


def _violations(package: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    bad = []
    for path in _sources(package):
        for target in _imported(path):
            if any(target == f or target.startswith(f + ".") for f in forbidden) and not any(
                target == a or target.startswith(a + ".") for a in allowed
            ):
                bad.append(f"{_module_name(path)} imports {target}")
    return sorted(bad)


# (package, may not import, except)
LAYERS = [
    ("checks", ("wizard", "textual", "rich", "probeserver.server", "starlette", "uvicorn"), ()),
    ("probeserver", ("wizard", "checks"), ()),
    # probes: the bottom room. They may use the DNS wire helpers, the UPnP error table and the PCP
    # wire client (standard library only: the router probe sends PCP ANNOUNCE), nothing above them.
    (
        "checks.probes",
        (
            "checks.portcheck",
            "checks.portmap",
            "checks.ddns",
            "checks.dns",
            "checks.diagnose",
            "checks.findings",
            "checks.summary",
            "checks.nat",
        ),
        ("checks.dns.wire", "checks.portmap.upnp_errors", "checks.portmap.pcp"),
    ),
    ("checks.portmap", ("checks.portcheck", "checks.ddns", "checks.dns", "checks.diagnose", "checks.findings"), ()),
    ("checks.portcheck", ("checks.ddns", "checks.dns", "checks.diagnose", "checks.findings", "checks.summary"), ()),
    ("checks.dns", ("checks.portcheck", "checks.portmap", "checks.diagnose", "checks.findings"), ()),
    ("checks.ddns", ("checks.portcheck", "checks.portmap", "checks.diagnose", "checks.findings"), ()),
]
# Shared helpers at the top of checks/: no room below them.
LEAVES = [
    "checks.model",
    "checks.errors",
    "checks.addresses",
    "checks.files",
    "checks.idn",
    "checks.risky",
    "checks.redact",
    "checks.names",
    "checks.http",
    "checks.config",
    "checks.summary",
]
ROOMS = (
    "checks.probes",
    "checks.portmap",
    "checks.portcheck",
    "checks.dns",
    "checks.ddns",
    "checks.diagnose",
    "checks.findings",
    "checks.nat",
)


@pytest.mark.parametrize(("package", "forbidden", "allowed"), LAYERS, ids=[layer[0] for layer in LAYERS])
def test_layer(package: str, forbidden: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    assert _violations(package, forbidden, allowed) == []


@pytest.mark.parametrize("module", LEAVES)
def test_shared_helpers_import_no_room(module: str) -> None:
    path = REPO / (module.replace(".", "/") + ".py")
    bad = sorted(t for t in _imported(path) if any(t == r or t.startswith(r + ".") for r in ROOMS))
    assert bad == []


def test_nothing_in_the_engine_imports_the_diagnosis_runner() -> None:
    assert _violations("checks", ("checks.diagnose",)) == []


def test_the_layer_checker_sees_lazy_imports() -> None:
    """The checker is only as good as its reading: a lazy import inside a function counts."""
    assert "checks.ddns.providers.registry" in _imported(REPO / "checks/dns/verify.py")
    assert _violations("checks.dns", ("checks.ddns",)) != []


def test_cli_help_does_not_import_textual() -> None:
    code = (
        "import sys\n"
        "from wizard.cli import build_parser\n"
        "build_parser().format_help()\n"
        "print('textual' in sys.modules, 'rich' in sys.modules, 'httpx' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "False"]
