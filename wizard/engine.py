"""The wizard's one door into the engine.

The Textual app never imports ``checks.*`` probe modules itself: it talks to a
``WizardEngine``.  ``RealEngine`` implements it on top of ``checks/`` (every engine
module is imported lazily, inside the method that needs it, so the app starts
quickly and keeps working while a module is missing); the TUI tests implement it
with canned result objects (tests/tui/fake_engine.py).

I/O-bound methods are coroutines (the app runs them in workers); pure ones
(``list_providers``, ``validate_field``) are plain functions so the credential
form can validate on every key press.

This module imports nothing from Textual or Rich.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Literal, Protocol, Sequence

from checks.config import Config, HostConfig
from checks.model import (
    Diagnosis,
    PortResult,
    ProbeRecord,
    UpdateResult,
    VerifyResult,
)

PortProtocol = Literal["tcp", "udp"]
ProbeCallback = Callable[[ProbeRecord], None]
PortCallback = Callable[[PortResult], None]
# Called with the latest verification and the seconds waited so far.
VerifyCallback = Callable[[VerifyResult, float], None]


@dataclass(frozen=True)
class PortSpec:
    port: int
    protocol: PortProtocol = "tcp"

    def __str__(self) -> str:
        return f"{self.port}/{self.protocol}"


@dataclass(frozen=True)
class FieldInfo:
    """One credential field of a provider, as the form shows it."""

    name: str                      # HostConfig attribute or options key: username, password, token, ...
    label: str
    secret: bool = False
    help: str = ""
    placeholder: str = ""
    required: bool = True


@dataclass(frozen=True)
class ProviderInfo:
    """What the provider table and the sign-up panel show."""

    name: str                      # registry key: dyndns2, duckdns, cloudflare, ...
    title: str
    cost: str                      # "free", "free (30-day confirm)", "domain needed", ...
    url: str
    signup_steps: tuple[str, ...] = ()
    pitfalls: tuple[str, ...] = ()
    fields: tuple[FieldInfo, ...] = ()
    supports_ipv6: bool = False
    hostname_hint: str = ""        # e.g. "NAME.duckdns.org"
    needs: str = ""                # one line: "account + DDNS key", "API token", ...

    @property
    def needs_text(self) -> str:
        if self.needs:
            return self.needs
        return ", ".join(f.label.lower() for f in self.fields) or "nothing"


@dataclass(frozen=True)
class Preflight:
    """Whether the credentials work, checked before anything is changed."""

    ok: bool
    message: str
    spent_update: bool = False     # the check itself updated the record (some providers have no dry run)


class WizardEngine(Protocol):
    """Everything the wizard asks the engine for.  Failures of probes come back as
    data inside the results; exceptions (``checks.errors``) only for what stops a step."""

    async def diagnose(self, on_progress: ProbeCallback | None = None) -> Diagnosis: ...

    async def check_ports(
        self, ports: Sequence[PortSpec], *, upnp: bool = False, on_progress: PortCallback | None = None
    ) -> tuple[PortResult, ...]: ...

    async def add_port_mapping(self, port: PortSpec, description: str = "ddns-wizard") -> str:
        """Create a lasting UPnP mapping to this host; returns a sentence for the user."""
        ...

    def list_providers(self) -> tuple[ProviderInfo, ...]: ...

    def validate_field(self, provider: str, field: str, value: str) -> str | None:
        """``None`` when the value looks right, else what is wrong with it."""
        ...

    async def preflight(self, host: HostConfig) -> Preflight: ...

    async def update(self, host: HostConfig) -> UpdateResult: ...

    async def verify(
        self,
        hostname: str,
        expected_ipv4: str | None,
        expected_ipv6: str | None,
        *,
        wait_s: float = 120.0,
        on_progress: VerifyCallback | None = None,
    ) -> VerifyResult: ...

    async def save_config(self, config: Config) -> Path: ...

    async def export_report(
        self, diagnosis: Diagnosis, path: Path, *, redact: bool = True, secrets: Sequence[str] = ()
    ) -> Path:
        """Write the report (format by suffix); ``secrets`` are removed besides the configuration's."""
        ...


# --------------------------------------------------------------------------- helpers

def _field_from_spec(spec: Any) -> FieldInfo:
    return FieldInfo(
        name=str(getattr(spec, "name")),
        label=str(getattr(spec, "label", "") or getattr(spec, "name")),
        secret=bool(getattr(spec, "secret", False)),
        help=str(getattr(spec, "help", "") or ""),
        placeholder=str(getattr(spec, "placeholder", "") or ""),
        required=bool(getattr(spec, "required", True)),
    )


def provider_info_from_spec(spec: Any) -> ProviderInfo:
    """Build the wizard's view of a ``checks.providers.registry.ProviderSpec``
    (read by attribute name, so extra fields on the spec do no harm)."""
    fields = tuple(_field_from_spec(f) for f in (getattr(spec, "fields", ()) or ()))
    return ProviderInfo(
        name=str(spec.name),
        title=str(getattr(spec, "title", spec.name)),
        cost=str(getattr(spec, "cost", "") or ""),
        url=str(getattr(spec, "url", "") or ""),
        signup_steps=tuple(str(s) for s in (getattr(spec, "signup_steps", ()) or ())),
        pitfalls=tuple(str(s) for s in (getattr(spec, "pitfalls", ()) or ())),
        fields=fields,
        supports_ipv6=bool(getattr(spec, "supports_ipv6", False)),
        hostname_hint=str(getattr(spec, "hostname_hint", "") or ""),
        needs=str(getattr(spec, "needs", "") or ""),
    )


def report_json_fallback(diagnosis: Diagnosis, path: Path, secrets: Sequence[str]) -> Path:
    """Write the report as JSON when wizard.report is not available."""
    import json

    from checks.config import write_private_file
    from checks.model import to_jsonable

    text = json.dumps(to_jsonable(diagnosis), indent=2)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    write_private_file(path, text.encode("utf-8"))
    return path


class RealEngine:
    """``WizardEngine`` on top of ``checks/`` for the configuration ``config``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._diagnosis: Diagnosis | None = None

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[Any]:
        from checks.http import make_client

        client = make_client()
        try:
            yield client
        finally:
            await client.aclose()

    async def diagnose(self, on_progress: ProbeCallback | None = None) -> Diagnosis:
        from checks.diagnose import run_diagnosis

        async with self._client() as client:
            diagnosis = await run_diagnosis(self.config, on_progress=on_progress, client=client)
        self._diagnosis = diagnosis
        return diagnosis

    async def check_ports(
        self, ports: Sequence[PortSpec], *, upnp: bool = False, on_progress: PortCallback | None = None
    ) -> tuple[PortResult, ...]:
        from checks import ports as ports_mod

        specs = [(p.port, p.protocol) for p in ports]
        check = getattr(ports_mod, "check_inbound")
        async with self._client() as client:
            results = await check(self.config, specs, upnp=upnp, client=client, on_progress=on_progress)
        return tuple(results)

    async def add_port_mapping(self, port: PortSpec, description: str = "ddns-wizard") -> str:
        from checks.errors import UpnpError
        from checks.upnp import IgdClient, ssdp_discover

        location = await ssdp_discover(timeout_s=1.0)
        if location is None:
            raise UpnpError("no UPnP router answered on this network")
        igd = await IgdClient.connect(location)
        lan = igd.lan_address
        await igd.add_mapping(port.port, port.protocol.upper(), lan, port.port, description, 0)
        return f"The router now forwards {port} to {lan}:{port.port} (UPnP, permanent)."

    def _registry(self) -> Any:
        from checks.providers import registry

        return registry

    def list_providers(self) -> tuple[ProviderInfo, ...]:
        registry = self._registry()
        return tuple(provider_info_from_spec(spec) for spec in registry.PROVIDERS.values())

    def validate_field(self, provider: str, field: str, value: str) -> str | None:
        try:
            spec = self._registry().get_provider(provider)
        except Exception:
            return None
        for f in getattr(spec, "fields", ()) or ():
            if getattr(f, "name", None) != field:
                continue
            validate = getattr(f, "validate", None)
            if validate is None:
                return None
            try:
                outcome = validate(value)
            except ValueError as exc:   # a validator may raise instead of returning
                return str(exc)
            if outcome is True or outcome is None:
                return None
            if outcome is False:
                return f"not a valid {getattr(f, 'label', field).lower()}"
            return str(outcome)
        return None

    async def preflight(self, host: HostConfig) -> Preflight:
        from checks.errors import ProviderError

        spec = self._registry().get_provider(host.provider)
        async with self._client() as client:
            try:
                result = await spec.preflight(host, client)
            except ProviderError as exc:
                return Preflight(ok=False, message=str(exc))
        return Preflight(
            ok=bool(getattr(result, "ok", False)),
            message=str(getattr(result, "message", "")),
            spent_update=bool(getattr(result, "spent_update", False)),
        )

    async def update(self, host: HostConfig) -> UpdateResult:
        from checks.updater import run_update

        config = self.config.with_hosts((host,))
        async with self._client() as client:
            results = await run_update(config, client=client)
        for result in results:
            if result.hostname == host.hostname:
                return result
        return UpdateResult(host.hostname, host.provider, None, None, "error", None, "the updater returned nothing")

    async def verify(
        self,
        hostname: str,
        expected_ipv4: str | None,
        expected_ipv6: str | None,
        *,
        wait_s: float = 120.0,
        on_progress: VerifyCallback | None = None,
    ) -> VerifyResult:
        from checks import dnsverify

        resolvers = list(self.config.endpoints.resolvers)
        waiter = getattr(dnsverify, "wait_until_consistent", None)
        if waiter is not None and wait_s > 0:
            return await waiter(
                hostname,
                expected_ipv4=expected_ipv4,
                expected_ipv6=expected_ipv6,
                resolvers=resolvers,
                wait_s=wait_s,
                on_progress=on_progress,
            )
        result = await dnsverify.verify_hostname(
            hostname, expected_ipv4=expected_ipv4, expected_ipv6=expected_ipv6, resolvers=resolvers
        )
        if on_progress is not None:
            on_progress(result, 0.0)
        return result

    async def save_config(self, config: Config) -> Path:
        from checks.config import save_config

        # File I/O with fsync: keep it off the event loop.
        path = await asyncio.to_thread(save_config, config)
        self.config = replace(config, path=path)
        return path

    async def export_report(
        self, diagnosis: Diagnosis, path: Path, *, redact: bool = True, secrets: Sequence[str] = ()
    ) -> Path:
        secrets = [*self.config.secret_values(), *secrets]
        try:
            from wizard import report as report_mod
        except ImportError:
            return await asyncio.to_thread(report_json_fallback, diagnosis, path, secrets)
        writer = getattr(report_mod, "write_report", None)
        if writer is None:
            return await asyncio.to_thread(report_json_fallback, diagnosis, path, secrets)
        written = await asyncio.to_thread(writer, diagnosis, path, redact=redact, config=self.config)
        return Path(written) if written else path
