"""Suite-wide rules.

Under ``CI=true`` a skipped lab test is a failure: the lab must run in CI.
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.lab.fixtures"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail") and item.get_closest_marker("lab") is not None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"lab test skipped under CI=true (not allowed): {reason}"


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own user state directory: the port probers' pacing file
    (checks/portcheck/probers.py) and the watch history never leak between tests or into $HOME."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
