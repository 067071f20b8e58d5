"""Typed messages: how engine results reach the screens.

Workers never touch widgets; they post one of these, and the screen's handler
(on the event loop, never awaiting the network) updates what the user sees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.message import Message

from checks.model import Diagnosis, PortResult, ProbeRecord, UpdateResult, VerifyResult

from ..engine import Preflight


class EngineMessage(Message, bubble=False):
    """Base of the messages a step's worker posts to its own screen (they do not bubble)."""


class ProbeFinished(EngineMessage):
    """One diagnosis probe finished (success or failure)."""

    def __init__(self, record: ProbeRecord) -> None:
        super().__init__()
        self.record = record


class DiagnosisReady(EngineMessage):
    def __init__(self, diagnosis: Diagnosis) -> None:
        super().__init__()
        self.diagnosis = diagnosis


class PortChecked(EngineMessage):
    """One port's verdict arrived (the rest may still be running)."""

    def __init__(self, result: PortResult) -> None:
        super().__init__()
        self.result = result


class PortsReady(EngineMessage):
    def __init__(self, results: tuple[PortResult, ...]) -> None:
        super().__init__()
        self.results = results


class PortsReadyOverIpv6(EngineMessage):
    """The IPv6 verdicts (``checks.portcheck.ipv6.Port6Result``), after the IPv4 ones."""

    def __init__(self, results: tuple[Any, ...]) -> None:
        super().__init__()
        self.results = results


class MappingDone(EngineMessage):
    def __init__(self, ok: bool, text: str) -> None:
        super().__init__()
        self.ok = ok
        self.text = text


class PreflightDone(EngineMessage):
    def __init__(self, preflight: Preflight) -> None:
        super().__init__()
        self.preflight = preflight


class UpdateDone(EngineMessage):
    def __init__(self, result: UpdateResult) -> None:
        super().__init__()
        self.result = result


class VerifyProgress(EngineMessage):
    def __init__(self, result: VerifyResult, waited_s: float) -> None:
        super().__init__()
        self.result = result
        self.waited_s = waited_s


class VerifyDone(EngineMessage):
    def __init__(self, result: VerifyResult) -> None:
        super().__init__()
        self.result = result


class ReachDone(EngineMessage):
    """The end-to-end reach check finished (``result``: checks.reach.ReachResult)."""

    def __init__(self, result: Any) -> None:
        super().__init__()
        self.result = result


class ConfigSaved(EngineMessage):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path


class ReportExported(EngineMessage):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path


class StepFailed(EngineMessage):
    """An engine call raised (a ``checks.errors`` error or something unexpected)."""

    def __init__(self, what: str, error: str) -> None:
        super().__init__()
        self.what = what
        self.error = error


class StatusNote(EngineMessage):
    """A sentence about what a running engine call is doing now (shown in the status line)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class ServiceInstalled(EngineMessage):
    """The service install finished (checks.ddns.service.Outcome: done, failed, or no systemd)."""

    def __init__(self, outcome: Any) -> None:
        super().__init__()
        self.outcome = outcome


class NotifyTested(EngineMessage):
    """A test notification was sent: one checks.ddns.notify.Delivery per URL."""

    def __init__(self, deliveries: tuple[Any, ...]) -> None:
        super().__init__()
        self.deliveries = deliveries
