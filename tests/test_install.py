"""Installing ddns-wizard the way the README tells users to, in fresh environments, offline.

The README says `pipx install .` / `uv tool install .`. Here the wheel is built from a
copy of this checkout, then installed into a fresh virtual environment with pip, with
pipx and with uv, both from the wheel and from the source tree (as the README's
commands do), and the installed `ddns-wizard` is run from there — never from this
checkout. Everything happens inside an empty network namespace (`unshare -n`: only a
loopback that is down), so neither the installs nor the tool reach any network.

The dependencies come from a local wheelhouse: each distribution already installed in
the environment running these tests is packed back into a wheel from its installed
files (the test extra installs them all; no index is asked).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata as md
import io
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TIMEOUT = 600


# --------------------------------------------------------------------------- isolation


def _isolation_prefix() -> list[str] | None:
    """`unshare -n` (root) or `unshare -rn` (an unprivileged user namespace), if either works."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    for argv in ([unshare, "-n"], [unshare, "-rn"]):
        try:
            probe = subprocess.run([*argv, "true"], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return argv
    return None


@pytest.fixture(scope="module")
def offline() -> list[str]:
    prefix = _isolation_prefix()
    if prefix is None:
        reason = "cannot make an empty network namespace here (unshare -n / -rn)"
        if IN_CI:
            pytest.fail(f"{reason}: under CI=true the install test must run")
        pytest.skip(reason)
    return prefix


def _run(
    offline: list[str], argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with no network. Proxy variables and this checkout are kept out."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.lower().endswith("_proxy") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    base.update(env or {})
    proc = subprocess.run([*offline, *argv], capture_output=True, text=True, env=base, cwd=cwd, timeout=TIMEOUT)
    assert proc.returncode == 0, (
        f"{' '.join(argv)} exited {proc.returncode}\n"
        f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    )
    return proc


# --------------------------------------------------------------------------- the source and the wheel


def _copy_checkout(dest: Path) -> Path:
    """This checkout's files (tracked and new, not ignored): what a clean clone would hold."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
        names = [n for n in listed.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = [
            str(p.relative_to(ROOT))
            for p in ROOT.rglob("*")
            if p.is_file() and not {".git", ".venv", "build", "dist", "__pycache__"} & set(p.parts)
        ]
    for name in names:
        src = ROOT / name
        if src.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _copy_checkout(tmp_path_factory.mktemp("src") / "ddns-wizard")


@pytest.fixture(scope="module")
def wheel(source: Path, offline: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    _run(
        offline,
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(dist),
            str(source),
        ],
    )
    wheels = list(dist.glob("ddns_wizard-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_the_wheel_holds_the_packages_and_their_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "checks/__init__.py",
        "checks/schema/report-1.schema.json",
        "wizard/cli.py",
        "wizard/tui/wizard.tcss",
    ):
        assert needed in names, f"the wheel lacks {needed}"
    assert not any(n.startswith(("tests/", "bench/", "scripts/")) for n in names), (
        "tests or tools leaked into the wheel"
    )
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "ddns-wizard = wizard.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


# --------------------------------------------------------------------------- the wheelhouse


def _wheel_tag(dist: md.Distribution) -> str:
    tags = [
        line.split(":", 1)[1].strip()
        for line in (dist.read_text("WHEEL") or "").splitlines()
        if line.startswith("Tag:")
    ]
    if not tags:
        return "py3-none-any"
    parts = [sorted({t.split("-")[i] for t in tags}) for i in range(3)]
    return "-".join(".".join(p) for p in parts)


def _repack(dist: md.Distribution, out: Path) -> Path:
    """A wheel of an installed distribution, from its installed files (RECORD)."""
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    version = dist.version
    info = f"{name}-{version}.dist-info"
    path = out / f"{name}-{version}-{_wheel_tag(dist)}.whl"
    records: list[tuple[str, str, str]] = []
    skip_info = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in dist.files or ():
            rel = file.as_posix()
            if rel.startswith("..") or "__pycache__" in rel or rel.endswith(".pyc"):
                continue  # scripts (regenerated from entry points), bytecode
            parts = rel.split("/")
            if parts[0].endswith(".dist-info"):
                if parts[-1] in skip_info:
                    continue
                rel = "/".join([info, *parts[1:]])
            src = Path(str(dist.locate_file(file)))
            if not src.is_file():
                continue
            data = src.read_bytes()
            zf.writestr(rel, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append((rel, f"sha256={digest}", str(len(data))))
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerows(records)
        writer.writerow((f"{info}/RECORD", "", ""))
        zf.writestr(f"{info}/RECORD", buf.getvalue())
    return path


def _closure(requirements: list[str], extras: tuple[str, ...] = ()) -> dict[str, md.Distribution]:
    """The installed distributions these requirements need, transitively."""
    env = default_environment()
    found: dict[str, md.Distribution] = {}
    done: set[tuple[str, str]] = set()  # (distribution, extra) already followed
    todo = [(Requirement(r), ("", *extras)) for r in requirements]
    while todo:
        req, wanted = todo.pop()
        marker_envs = [dict(env, extra=e) for e in (wanted or ("",))]
        if req.marker is not None and not any(req.marker.evaluate(e) for e in marker_envs):
            continue
        key = canonicalize_name(req.name)
        if key == "ddns-wizard":
            continue
        new_extras = [e for e in ("", *sorted(req.extras)) if (key, e) not in done]
        if not new_extras:
            continue
        dist = found.setdefault(key, md.distribution(req.name))
        for extra in new_extras:  # markdown-it-py, then markdown-it-py[linkify]
            done.add((key, extra))
            todo.extend((Requirement(r), (extra,) if extra else ()) for r in dist.requires or ())
    return found


@pytest.fixture(scope="module")
def wheelhouse(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    house = tmp_path_factory.mktemp("wheelhouse")
    meta = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".dist-info/METADATA")))
        .decode()
    )
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    # The runtime dependencies and the `server` extra's (the probe server: README's
    # `pipx install '.[server]'`); setuptools: what `pipx install .` / `uv tool install .`
    # build the source tree with.
    for dist in _closure([*requires, "setuptools>=68"], extras=("server",)).values():
        _repack(dist, house)
    shutil.copy2(wheel, house)
    return house


# --------------------------------------------------------------------------- installed, then run


def _check_installed(offline: list[str], bin_dir: Path, python: Path | None, workdir: Path) -> None:
    """The installed copy answers, offline, from its own environment (not this checkout)."""
    exe = bin_dir / "ddns-wizard"
    assert exe.is_file(), f"no ddns-wizard in {bin_dir}"
    env = {
        "HOME": str(workdir),
        "XDG_CONFIG_HOME": str(workdir / "config"),
        "XDG_STATE_HOME": str(workdir / "state"),
        "DDNS_WIZARD_CONFIG": str(workdir / "none.toml"),
    }
    out = _run(offline, [str(exe), "--help"], env=env, cwd=workdir).stdout
    assert "usage: ddns-wizard" in out and "diagnose" in out and "probe-server" in out
    out = _run(offline, [str(exe), "--version"], env=env, cwd=workdir).stdout
    assert re.fullmatch(r"ddns-wizard \d+\.\d+\S*\n", out), out
    out = _run(offline, [str(exe), "providers"], env=env, cwd=workdir).stdout
    assert "duckdns" in out and "cloudflare" in out and "rfc2136" in out
    out = _run(offline, [str(exe), "providers", "duckdns", "--json"], env=env, cwd=workdir).stdout
    assert '"name": "duckdns"' in out
    if python is not None:
        where = _run(
            offline,
            [str(python), "-c", "import checks, wizard; print(checks.__file__); print(wizard.__file__)"],
            env=env,
            cwd=workdir,
        ).stdout
        for line in where.splitlines():
            assert not Path(line).resolve().is_relative_to(ROOT), f"imported from the checkout: {line}"


def test_pip_installs_the_wheel_into_a_fresh_venv(
    offline: list[str], wheel: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    base_python = Path(sysconfig.get_config_var("BINDIR") or "") / "python3"
    python_for_venv = str(base_python) if base_python.is_file() else sys.executable
    _run(offline, [python_for_venv, "-m", "venv", str(venv)])
    _run(
        offline,
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--disable-pip-version-check",
            "--find-links",
            str(wheelhouse),
            str(wheel),
        ],
    )
    _check_installed(offline, venv / "bin", venv / "bin" / "python", tmp_path)
    # Without the `server` extra the probe server says what to install (exit 2), no traceback.
    proc = subprocess.run(
        [*offline, str(venv / "bin" / "ddns-wizard"), "probe-server", "--listen", "127.0.0.1:8080"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "ddns-wizard[server]" in proc.stderr and "Traceback" not in proc.stderr


def _offline_index_env(tmp_path: Path, wheelhouse: Path) -> dict[str, str]:
    """pip's and uv's settings for installing from the wheelhouse only."""
    return {
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheelhouse),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_CONSTRAINT": "",
        "UV_OFFLINE": "1",
        "UV_NO_INDEX": "1",
        "UV_FIND_LINKS": str(wheelhouse),
        "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_CONFIG": "1",
    }


@pytest.mark.parametrize("what", ["wheel", "source"])
def test_pipx_install(
    offline: list[str], wheel: Path, source: Path, wheelhouse: Path, tmp_path: Path, what: str
) -> None:
    target = str(wheel) if what == "wheel" else str(source)  # README: `pipx install .`
    env = {
        "PIPX_HOME": str(tmp_path / "pipx"),
        "PIPX_BIN_DIR": str(tmp_path / "bin"),
        "PIPX_MAN_DIR": str(tmp_path / "man"),
        "PIPX_DEFAULT_PYTHON": sys.executable,
        "PIPX_DEFAULT_BACKEND": "uv",
        **_offline_index_env(tmp_path, wheelhouse),
    }
    # pipx's default backend where uv is installed (as with the test extra) is uv, set here so
    # the user's PIPX_DEFAULT_BACKEND cannot change it. Its pip backend
    # first upgrades pip in pipx's shared libraries (pip >= 26.1 for pipx 1.18), which needs an
    # index this offline test does not have.
    _run(offline, [sys.executable, "-m", "pipx", "install", target], env=env, cwd=tmp_path)
    _check_installed(
        offline, tmp_path / "bin", tmp_path / "pipx" / "venvs" / "ddns-wizard" / "bin" / "python", tmp_path
    )


def _uv() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:
        pytest.fail("uv is missing: it is in the test extra (pip install -e '.[test,server]')")
    return str(find_uv_bin())


@pytest.mark.parametrize("what", ["wheel", "source"])
def test_uv_tool_install(
    offline: list[str], wheel: Path, source: Path, wheelhouse: Path, tmp_path: Path, what: str
) -> None:
    target = str(wheel) if what == "wheel" else str(source)  # README: `uv tool install .`
    env = {
        "UV_TOOL_DIR": str(tmp_path / "tools"),
        "UV_TOOL_BIN_DIR": str(tmp_path / "bin"),
        **_offline_index_env(tmp_path, wheelhouse),
    }
    _run(
        offline,
        [
            _uv(),
            "tool",
            "install",
            "--offline",
            "--no-index",
            "--find-links",
            str(wheelhouse),
            "--python",
            sys.executable,
            target,
        ],
        env=env,
        cwd=tmp_path,
    )
    _check_installed(offline, tmp_path / "bin", tmp_path / "tools" / "ddns-wizard" / "bin" / "python", tmp_path)


def test_pipx_install_with_the_server_extra(offline: list[str], source: Path, wheelhouse: Path, tmp_path: Path) -> None:
    """README: `pipx install '.[server]'` brings the probe server's web stack."""
    env = {
        "PIPX_HOME": str(tmp_path / "pipx"),
        "PIPX_BIN_DIR": str(tmp_path / "bin"),
        "PIPX_MAN_DIR": str(tmp_path / "man"),
        "PIPX_DEFAULT_PYTHON": sys.executable,
        "PIPX_DEFAULT_BACKEND": "uv",
        **_offline_index_env(tmp_path, wheelhouse),
    }
    _run(offline, [sys.executable, "-m", "pipx", "install", f"{source}[server]"], env=env, cwd=tmp_path)
    python = tmp_path / "pipx" / "venvs" / "ddns-wizard" / "bin" / "python"
    _check_installed(offline, tmp_path / "bin", python, tmp_path)
    _run(offline, [str(python), "-c", "import starlette, uvicorn"], cwd=tmp_path)
    out = _run(offline, [str(tmp_path / "bin" / "ddns-wizard"), "probe-server", "--help"], cwd=tmp_path).stdout
    assert "--listen" in out
