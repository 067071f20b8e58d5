"""Port mappings on the router: the ``Mapper`` protocol and its UPnP IGD and NAT-PMP
(RFC 6886) implementations.  A refused action raises ``checks.errors.MappingError``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from typing import Protocol as TypingProtocol

from checks.errors import MappingError
from checks.model import PortMapping
from checks.model import PortProtocol as Protocol
from checks.portmap.upnp_errors import upnp_error_text

TEST_LEASE_S = 300  # short lease: even a SIGKILLed run leaves nothing for long
# --keep: UPnP asks for a permanent lease (0; miniupnpd turns it into a week), retried with a
# week where a router refuses 0. NAT-PMP has no permanent lease (0 deletes): a week.
LONGEST_LEASE_S = 7 * 86400
KEPT_DESCRIPTION = "ddns-wizard"
MAPPING_DESCRIPTION = "ddns-wizard port test"


class Mapper(TypingProtocol):
    """Creates and removes port mappings on the router (UPnP IGD or NAT-PMP)."""

    name: str

    @property
    def lan_address(self) -> str | None: ...

    async def existing(self, external_port: int, protocol: Protocol, *, strict: bool = False) -> PortMapping | None: ...

    async def add(
        self,
        external_port: int,
        protocol: Protocol,
        internal_host: str,
        internal_port: int,
        lease_s: int,
        description: str,
    ) -> int: ...

    async def remove(self, external_port: int, protocol: Protocol, internal_port: int) -> None: ...


class UpnpMapper:
    """Mappings through an IGD client (checks.probes.upnp.IgdClient, or a fake with the same methods)."""

    name = "UPnP"
    via = "upnp"
    keep_lease_s = 0  # permanent (the router may cap it)

    def __init__(self, igd: Any) -> None:
        self.igd = igd

    @property
    def lan_address(self) -> str | None:
        return getattr(self.igd, "lan_address", None) or None

    async def existing(self, external_port: int, protocol: Protocol, *, strict: bool = False) -> PortMapping | None:
        """The router's mapping on this port. A failed lookup is "none known", unless
        ``strict``: then it raises, so a cleanup never mistakes a silent router for a clean one."""
        try:
            found: PortMapping | None = await self.igd.get_mapping(external_port, protocol.upper())
            return found
        except Exception:
            if strict:
                raise
            return None

    async def add(
        self,
        external_port: int,
        protocol: Protocol,
        internal_host: str,
        internal_port: int,
        lease_s: int,
        description: str,
    ) -> int:
        try:
            await self.igd.add_mapping(
                external_port, protocol.upper(), internal_host, internal_port, description, lease_s
            )
        except Exception as exc:
            raise MappingError(upnp_error_text(exc), code=getattr(exc, "code", None)) from None
        return external_port

    async def remove(self, external_port: int, protocol: Protocol, internal_port: int) -> None:
        try:
            deleted = await self.igd.delete_mapping(external_port, protocol.upper())
        except Exception as exc:
            raise MappingError(upnp_error_text(exc), code=getattr(exc, "code", None)) from None
        if not deleted:
            # Gone already (lease expired) is fine; still there is not.
            still = await self.existing(external_port, protocol)
            if still is not None:
                raise MappingError("the router refused to delete it")


class NatPmpMapper:
    """Mappings through NAT-PMP (RFC 6886): always to the requesting host; the router may
    grant another external port than asked."""

    name = "NAT-PMP"
    via = "natpmp"
    keep_lease_s = LONGEST_LEASE_S  # NAT-PMP has no permanent lease: 0 would delete

    def __init__(
        self, gateway: str, local_address: str | None, map_fn: Callable[..., Awaitable[Any]] | None = None
    ) -> None:
        self.gateway = gateway
        self._local = local_address
        self._map = map_fn
        self.lifetimes: dict[tuple[int, str], int] = {}  # (external port, protocol) -> granted s

    @property
    def lan_address(self) -> str | None:
        return self._local

    async def _call(self, *args: Any) -> Any:
        if self._map is None:
            from checks.probes.natpmp import natpmp_map

            self._map = natpmp_map
        return await self._map(self.gateway, *args)

    async def existing(self, external_port: int, protocol: Protocol, *, strict: bool = False) -> PortMapping | None:
        if strict:
            raise MappingError("NAT-PMP cannot list mappings")
        return None  # NAT-PMP cannot list mappings

    async def add(
        self,
        external_port: int,
        protocol: Protocol,
        internal_host: str,
        internal_port: int,
        lease_s: int,
        description: str,
    ) -> int:
        reply = await self._call(protocol, internal_port, external_port, lease_s)
        if not reply.ok:
            raise MappingError(f"NAT-PMP refused: {reply.error or 'no reply'}", code=reply.result_code)
        granted = int(reply.external_port or external_port)
        if reply.lifetime:
            self.lifetimes[(granted, protocol)] = int(reply.lifetime)
        return granted

    async def remove(self, external_port: int, protocol: Protocol, internal_port: int) -> None:
        reply = await self._call(protocol, internal_port, 0, 0)
        if not reply.ok:
            raise MappingError(f"NAT-PMP refused to delete it: {reply.error or 'no reply'}", code=reply.result_code)
