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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from checks.config import Config, HostConfig
from checks.model import (
    Diagnosis,
    PortResult,
    ProbeRecord,
    UpdateResult,
    VerifyResult,
)
from checks.portcheck.spec import PortSpec as PortSpec  # the engine's one port spec (re-exported for the screens)

if TYPE_CHECKING:
    from checks.model import Port6Result

PortProtocol = Literal["tcp", "udp"]
ProbeCallback = Callable[[ProbeRecord], None]
PortCallback = Callable[[PortResult], None]
StatusCallback = Callable[[str], None]
# Called with the latest verification and the seconds waited so far.
VerifyCallback = Callable[[VerifyResult, float], None]


@dataclass(frozen=True)
class FieldInfo:
    """One credential field of a provider, as the form shows it."""

    name: str  # HostConfig attribute or options key: username, password, token, ...
    label: str
    secret: bool = False
    help: str = ""
    placeholder: str = ""
    required: bool = True
    default: str | None = None  # pre-filled value (e.g. a TTL)


@dataclass(frozen=True)
class ProviderInfo:
    """What the provider table and the sign-up panel show."""

    name: str  # registry key: dyndns2, duckdns, cloudflare, ...
    title: str
    cost: str  # "free", "free (30-day confirm)", "domain needed", ...
    url: str
    signup_steps: tuple[str, ...] = ()
    pitfalls: tuple[str, ...] = ()
    fields: tuple[FieldInfo, ...] = ()
    supports_ipv6: bool = False
    hostname_hint: str = ""  # e.g. "NAME.duckdns.org"
    needs: str = ""  # one line: "account + DDNS key", "API token", ...

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
    spent_update: bool = False  # the check itself updated the record (some providers have no dry run)


class WizardEngine(Protocol):
    """Everything the wizard asks the engine for.  Failures of probes come back as
    data inside the results; exceptions (``checks.errors``) only for what stops a step."""

    async def diagnose(self, on_progress: ProbeCallback | None = None) -> Diagnosis: ...

    async def check_ports(
        self,
        ports: Sequence[PortSpec],
        *,
        upnp: bool = False,
        on_progress: PortCallback | None = None,
        on_status: StatusCallback | None = None,
    ) -> tuple[PortResult, ...]:
        """Test inbound reachability from outside; ``on_progress`` gets each verdict as it is
        known (engines that decide all at once may never call it), ``on_status`` a sentence
        about what is happening now."""
        ...

    async def check_ports_ipv6(
        self, ports: Sequence[PortSpec], *, on_status: StatusCallback | None = None
    ) -> tuple[Port6Result, ...]:
        """The same ports tested over IPv6 (this computer's stable address, through the
        router's IPv6 firewall)."""
        ...

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
        host: HostConfig | None = None,
    ) -> VerifyResult: ...

    async def reach(self, hostname: str, ports: Sequence[int], public: tuple[str | None, str | None]) -> Any:
        """The end-to-end check (checks.reach.ReachResult): the name, from outside, TLS, hairpin."""
        ...

    async def save_config(self, config: Config) -> Path: ...

    async def install_service(self, config_path: Path, scope: str | None = None) -> Any:
        """Install `watch` as a systemd service (checks.ddns.service.Outcome), as
        `ddns-wizard service install` does; without systemd the Outcome says so (cron line)."""
        ...

    async def notify_test(self, urls: Sequence[str]) -> Any:
        """A test notification to each URL: checks.ddns.notify.Delivery per URL."""
        ...

    async def export_report(
        self, diagnosis: Diagnosis, path: Path, *, redact: bool = True, config: Config | None = None
    ) -> Path:
        """Write the report (format by suffix); ``config``'s secrets are removed from it."""
        ...


# --------------------------------------------------------------------------- helpers


def _field_from_spec(spec: Any) -> FieldInfo:
    return FieldInfo(
        name=str(spec.name),
        label=str(getattr(spec, "label", "") or spec.name),
        secret=bool(getattr(spec, "secret", False)),
        help=str(getattr(spec, "help", "") or ""),
        placeholder=str(getattr(spec, "placeholder", "") or ""),
        required=bool(getattr(spec, "required", True)),
        default=None if getattr(spec, "default", None) is None else str(spec.default),
    )


def provider_info_from_spec(spec: Any) -> ProviderInfo:
    """Build the wizard's view of a ``checks.ddns.providers.registry.ProviderSpec``
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


class RealEngine:
    """``WizardEngine`` on top of ``checks/``, for the configuration ``config``
    (its ``[endpoints]`` decide every outside service contacted)."""

    def __init__(self, config: Config) -> None:
        self.config = config

    @staticmethod
    def _registry() -> Any:
        from checks.ddns.providers import registry

        return registry

    async def diagnose(self, on_progress: ProbeCallback | None = None) -> Diagnosis:
        from checks.diagnose import run_diagnosis

        # run_diagnosis makes (and closes) its own client with the right per-probe timeouts.
        return await run_diagnosis(self.config, on_progress=on_progress)

    async def check_ports(
        self,
        ports: Sequence[PortSpec],
        *,
        upnp: bool = False,
        on_progress: PortCallback | None = None,
        on_status: StatusCallback | None = None,
    ) -> tuple[PortResult, ...]:
        from checks.http import make_client
        from checks.portcheck import run as ports_mod
        from checks.portcheck.spec import PortSpec

        specs = [PortSpec(p.port, p.protocol) for p in ports]
        # The prober waits for its own connection attempts: a longer client timeout (as the CLI).
        async with make_client(timeout_s=12.0) as client:
            report = await ports_mod.run_port_check(
                specs, endpoints=self.config.endpoints, client=client, use_upnp=upnp, on_progress=on_status
            )
        if on_progress is not None:
            for result in report.results:
                on_progress(result)
        return tuple(report.results)

    async def check_ports_ipv6(
        self, ports: Sequence[PortSpec], *, on_status: StatusCallback | None = None
    ) -> tuple[Port6Result, ...]:
        from checks.portcheck.ipv6 import check_ipv6_ports
        from checks.portcheck.spec import PortSpec

        specs = [PortSpec(p.port, p.protocol) for p in ports]
        return await check_ipv6_ports(specs, probers_v6=self.config.endpoints.port_check_v6, on_progress=on_status)

    async def add_port_mapping(self, port: PortSpec, description: str = "ddns-wizard") -> str:
        from checks.errors import UpnpError
        from checks.portcheck.run import gather_facts, keep_forward, open_mapper

        facts = await gather_facts()
        mapper, why = await open_mapper(facts)
        if mapper is None:
            raise UpnpError(f"the router offers no way to map ports ({why})")
        lan = mapper.lan_address or facts.local.ipv4
        if not lan:
            raise UpnpError("this machine's LAN address is unknown")
        try:
            # A lasting forward: UPnP's permanent lease (or the longest the router accepts),
            # NAT-PMP's week (a NAT-PMP lifetime of 0 would delete it).
            return await keep_forward(mapper, port.port, port.protocol, lan)
        except Exception as exc:  # MappingError and friends: the router's own words
            raise UpnpError(f"{mapper.name}: {exc}", code=getattr(exc, "code", None)) from None

    def list_providers(self) -> tuple[ProviderInfo, ...]:
        return tuple(provider_info_from_spec(spec) for spec in self._registry().PROVIDERS.values())

    def validate_field(self, provider: str, field: str, value: str) -> str | None:
        try:
            spec = self._registry().get_provider(provider)
        except Exception:
            return None
        for f in getattr(spec, "fields", ()) or ():
            if getattr(f, "name", None) != field:
                continue
            validate = getattr(f, "validate", None)
            problem = validate(value) if validate is not None else None
            if problem:
                return str(problem)
            if field == "server":
                server_check = getattr(spec, "_validate_server", None)
                problem = server_check(value) if server_check is not None else None
                return str(problem) if problem else None
            if field == "hostname":
                # The provider's own domain rule (e.g. names end in .duckdns.org).
                domain_check = getattr(spec, "_validate_hostname_domain", None)
                if domain_check is not None:
                    problems = domain_check(HostConfig(hostname=value.strip().lower(), provider=spec.name))
                    if problems:
                        return str(problems[0])
            return None
        return None

    async def preflight(self, host: HostConfig) -> Preflight:
        from checks.ddns.updater import make_provider_client
        from checks.errors import ProviderError

        registry = self._registry()
        problems = registry.validate_host(host)
        if problems:
            return Preflight(ok=False, message="; ".join(problems))
        client = make_provider_client()
        try:
            result = await registry.preflight(host, client)
        except ProviderError as exc:
            return Preflight(ok=False, message=str(exc))
        finally:
            await client.aclose()
        return Preflight(ok=bool(result.ok), message=str(result.message), spent_update=bool(result.spent_update))

    async def update(self, host: HostConfig) -> UpdateResult:
        from checks.ddns.updater import run_update

        results = await run_update(self.config.with_hosts((host,)))
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
        host: HostConfig | None = None,
    ) -> VerifyResult:
        from checks.dns.verify import verify_configured

        if host is None:
            host = next((h for h in self.config.hosts if h.hostname == hostname), None)
        # verify_configured asks the provider's API for a proxied Cloudflare record (DNS shows
        # Cloudflare's edge there by design) and otherwise waits until every DNS answer agrees.
        return await verify_configured(
            hostname,
            host,
            expected_ipv4=expected_ipv4,
            expected_ipv6=expected_ipv6,
            resolvers=list(self.config.endpoints.resolvers),
            wait_s=wait_s,
            on_progress=on_progress,
            # No LAN ping: from inside it reaches the router and proves nothing; the reach
            # check that follows (self.reach) is the proof.
            ping=False,
        )

    async def reach(self, hostname: str, ports: Sequence[int], public: tuple[str | None, str | None]) -> Any:
        from checks.reach import parse_reach_port, run_reach

        specs = [parse_reach_port(str(p)) for p in ports] or [parse_reach_port("443")]
        return await run_reach(hostname, specs, self.config, public=public if any(public) else None)

    async def save_config(self, config: Config) -> Path:
        from checks.config import save_config

        # File I/O with fsync: keep it off the event loop.
        path = await asyncio.to_thread(save_config, config)
        self.config = replace(config, path=path)
        return path

    async def install_service(self, config_path: Path, scope: str | None = None) -> Any:
        from checks.ddns import service

        plan = service.plan_install(scope or service.default_scope(), config_path=config_path)
        return await asyncio.to_thread(service.install, plan)

    async def notify_test(self, urls: Sequence[str]) -> Any:
        from checks.ddns.notify import Notifier, NotifySettings, NotifyState
        from checks.redact import Redactor

        redactor = Redactor.from_config(self.config)
        redactor.add(urls)
        return await Notifier(NotifySettings(tuple(urls)), NotifyState(None), redactor=redactor).test()

    async def export_report(
        self, diagnosis: Diagnosis, path: Path, *, redact: bool = True, config: Config | None = None
    ) -> Path:
        from checks.errors import UsageError
        from wizard.report import write_report

        config = config or self.config

        if path.exists():
            # Never clobber a file the user may want (same rule as `diagnose --report` without --force).
            raise UsageError(f"{path} already exists: type another file name (nothing was overwritten)")
        return await asyncio.to_thread(write_report, diagnosis, path, config=config, redact=redact)
