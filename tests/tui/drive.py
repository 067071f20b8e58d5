"""Walk the wizard to a given step with a Pilot (shared by the Pilot tests, the
snapshot tests and scripts/screenshots.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.pilot import Pilot

from checks.config import Config
from wizard.tui.app import WizardApp

from .fake_engine import FakeEngine

GOOD_TOKEN = "3f2b8c1e-9d4a-4e7b-a1c5-6d0e2f9b7a41"
EXECUTABLE = "/usr/local/bin/ddns-wizard"
CONFIG_PATH = Path("/home/you/.config/ddns-wizard/config.toml")


def make_app(
    scenario: str = "home",
    *,
    config_path: Path = CONFIG_PATH,
    report_dir: Path = Path("/home/you/Documents"),  # never written to by the snapshot steps
    light: bool = False,
    engine: FakeEngine | None = None,
) -> WizardApp:
    engine = engine or FakeEngine(scenario=scenario)
    app = WizardApp(engine, Config(path=config_path), report_dir=report_dir, light=light, executable=EXECUTABLE)
    app.service_scope = "user"  # what the Done step offers must not depend on who runs the tests
    return app


async def wait_for(pilot: Pilot, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Let the app run until ``predicate()`` holds (workers deliver their messages)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting on {type(pilot.app.screen).__name__}")
        await pilot.pause(0.02)
    await pilot.pause()


def screen_name(pilot: Pilot) -> str:
    return type(pilot.app.screen).__name__


async def on_screen(pilot: Pilot, name: str) -> None:
    await wait_for(pilot, lambda: screen_name(pilot) == name)


def idle(pilot: Pilot) -> bool:
    return not getattr(pilot.app.screen, "is_busy", False)


async def to_network(pilot: Pilot, choice: str = "1") -> None:
    await on_screen(pilot, "WelcomeScreen")
    await pilot.press(choice)
    await on_screen(pilot, "NetworkScreen")
    app: WizardApp = pilot.app  # type: ignore[assignment]
    await wait_for(pilot, lambda: app.state.diagnosis is not None and idle(pilot))


async def to_ports(pilot: Pilot) -> None:
    await to_network(pilot)
    await pilot.press("n")
    if screen_name(pilot) == "HostingScreen" or pilot.app.state.hosting_blocked:  # type: ignore[attr-defined]
        await on_screen(pilot, "HostingScreen")
        await pilot.press("n")
    await on_screen(pilot, "PortsScreen")


async def ports_tested(pilot: Pilot) -> None:
    await to_ports(pilot)
    await pilot.press("t")
    await wait_for(pilot, lambda: bool(pilot.app.state.ports) and idle(pilot))  # type: ignore[attr-defined]


async def ports_tested_with_upnp(pilot: Pilot) -> None:
    """The web preset tested through temporary UPnP mappings: 443 opens for the test only."""
    from textual.widgets import Checkbox

    await to_ports(pilot)
    pilot.app.screen.query_one("#use-upnp", Checkbox).value = True
    await pilot.pause()
    await pilot.press("t")
    await wait_for(pilot, lambda: bool(pilot.app.state.ports) and idle(pilot))  # type: ignore[attr-defined]


async def to_provider(pilot: Pilot) -> None:
    await to_ports(pilot)
    await pilot.press("n")
    await on_screen(pilot, "ProviderScreen")


async def to_credentials(pilot: Pilot, provider_row: int = 0) -> None:
    await to_provider(pilot)
    for _ in range(provider_row):
        await pilot.press("down")
    await pilot.press("enter")
    await on_screen(pilot, "CredentialsScreen")


async def fill_duckdns(pilot: Pilot, hostname: str = "myhome.duckdns.org", token: str = GOOD_TOKEN) -> None:
    await to_credentials(pilot)
    await pilot.press(*hostname, "tab", *token)
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: pilot.app.state.preflight is not None and idle(pilot))  # type: ignore[attr-defined]


async def to_update(pilot: Pilot) -> None:
    await fill_duckdns(pilot)
    await pilot.press("ctrl+n")
    await on_screen(pilot, "UpdateScreen")


async def updated(pilot: Pilot) -> None:
    await to_update(pilot)
    await pilot.press("u")
    await wait_for(pilot, lambda: pilot.app.state.update is not None and idle(pilot))  # type: ignore[attr-defined]


async def to_verify(pilot: Pilot) -> None:
    await updated(pilot)
    await pilot.press("n")
    await on_screen(pilot, "VerifyScreen")
    await wait_for(pilot, lambda: pilot.app.state.verify is not None and idle(pilot))  # type: ignore[attr-defined]


async def to_done(pilot: Pilot) -> None:
    await to_verify(pilot)
    await pilot.press("n")
    await on_screen(pilot, "DoneScreen")


async def saved(pilot: Pilot) -> None:
    await to_done(pilot)
    await pilot.press("s")
    await wait_for(pilot, lambda: pilot.app.state.saved_path is not None and idle(pilot))  # type: ignore[attr-defined]


Step = Callable[[Pilot], Awaitable[None]]


async def verify_wrong_record(pilot: Pilot) -> None:
    """The Verify step when the record itself holds another address: the offer to update."""
    await updated(pilot)
    pilot.app.engine.wrong_records.add("myhome.duckdns.org")  # type: ignore[attr-defined]
    await pilot.press("n")
    await on_screen(pilot, "VerifyScreen")
    await wait_for(pilot, lambda: pilot.app.state.verify is not None and idle(pilot))  # type: ignore[attr-defined]


async def troubleshoot_summary(pilot: Pilot) -> None:
    """Troubleshooting two configured names, one with a wrong record, to the Done step's summary."""
    from checks.config import HostConfig

    app = pilot.app
    app.state.config = app.state.config.with_hosts(
        (  # type: ignore[attr-defined]
            HostConfig("web.example.org", "dyndns2", username="me", password="pw"),
            HostConfig("nas.example.org", "dyndns2", username="me", password="pw"),
        )
    )
    app.engine.wrong_records.add("nas.example.org")  # type: ignore[attr-defined]
    await to_network(pilot, choice="2")
    await pilot.press("n")
    await on_screen(pilot, "PortsScreen")
    await pilot.press("n")
    await on_screen(pilot, "VerifyScreen")
    await wait_for(pilot, lambda: len(app.state.verifies) == 2 and idle(pilot))  # type: ignore[attr-defined]
    await pilot.press("n")
    await on_screen(pilot, "DoneScreen")


SNAPSHOT_REPORT = Path("/tmp/ddnsw-snapshot-report/ddns-wizard-report.md")


async def exported(pilot: Pilot) -> None:
    """The Done step after "e", at a fixed report path (removed first: the export never overwrites)."""
    from textual.widgets import Input

    await to_done(pilot)
    SNAPSHOT_REPORT.parent.mkdir(exist_ok=True)
    SNAPSHOT_REPORT.unlink(missing_ok=True)
    pilot.app.screen.query_one("#report-path", Input).value = str(SNAPSHOT_REPORT)
    await pilot.press("e")
    await wait_for(pilot, lambda: pilot.app.state.report_path is not None and idle(pilot))  # type: ignore[attr-defined]
    await pilot.pause()


async def steady(pilot: Pilot) -> None:
    """Stop what moves on its own (input cursors blink) so pictures are reproducible."""
    from textual.widgets import Input

    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await settled(pilot)


async def settled(pilot: Pilot, timeout_s: float = 5.0) -> None:
    """Wait until no worker runs and two pictures taken 50 ms apart are the same.

    A step's result arrives in several messages (the result, the worker's state change
    that re-enables Next, a verdict's recompose, the footer's bindings, a scroll after
    refresh); on a loaded machine one pause did not cover them all and a snapshot caught
    the screen half drawn (CI, stop 22)."""
    from textual.worker import WorkerState

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    previous = None
    while loop.time() < deadline:
        await pilot.pause(0.05)
        await pilot.wait_for_scheduled_animations()
        running = any(w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in pilot.app.workers)
        picture = pilot.app.export_screenshot()
        if not running and picture == previous:
            return
        previous = picture
    # Still moving after the deadline (something animates): take the picture as it is.


async def failed_credentials(pilot: Pilot) -> None:
    await fill_duckdns(pilot, token="00000000-0000-0000-0000-000000000000")


async def to_hosting(pilot: Pilot) -> None:
    await to_network(pilot)
    await pilot.press("n")
    await on_screen(pilot, "HostingScreen")


async def help_on_ports(pilot: Pilot) -> None:
    await ports_tested(pilot)
    await settled(pilot)  # the results scrolled into view behind the help, not while it opens
    await pilot.press("f1")
    await on_screen(pilot, "HelpScreen")


async def details(pilot: Pilot) -> None:
    await to_network(pilot)
    await pilot.press("d")


async def welcome(pilot: Pilot) -> None:
    await on_screen(pilot, "WelcomeScreen")


# (name, scenario, steps, light theme): every screen the README and the snapshots show.
SCREENS: tuple[tuple[str, str, Step, bool], ...] = (
    ("welcome", "home", welcome, False),
    ("network", "home", to_network, False),
    ("network-details", "home", details, False),
    ("hosting-cgnat", "cgnat", to_hosting, False),
    ("ports", "home", ports_tested, False),
    ("ports-open-for-the-test", "home", ports_tested_with_upnp, False),
    ("provider", "home", to_provider, False),
    ("credentials-rejected", "home", failed_credentials, False),
    ("credentials-ok", "home", fill_duckdns, False),
    ("update", "home", updated, False),
    ("update-cgnat", "cgnat", updated, False),
    ("verify", "home", to_verify, False),
    ("done", "home", to_done, False),
    ("done-cgnat", "cgnat", to_done, False),
    ("done-exported", "home", exported, False),
    ("verify-wrong-record", "home", verify_wrong_record, False),
    ("troubleshoot-summary", "home", troubleshoot_summary, False),
    ("help", "home", help_on_ports, False),
    ("light-theme", "home", to_network, True),
)
