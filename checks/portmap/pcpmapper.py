"""A Mapper over PCP (the same protocol as the UPnP and NAT-PMP mappers).

PCP maps a port of the host that asks (no THIRD_PARTY option here): the mapping
always points at this machine. It cannot list the router's mappings, so
``existing`` knows only the mappings this mapper made or adopted from the
lasting-forwards ledger (checks/portmap/lasting.py), which stores their nonces so a
later run can renew or delete them.

Leases: PCP has no permanent mapping (lifetime 0 deletes, RFC 6887 §11.2.1), so a
lasting one asks for a week and is renewed by ``watch`` at half of what the router
granted (miniupnpd caps it at its ``max_lifetime``, a day by default).

Router restarts: every reply's epoch goes through the client's EpochTracker; after a
restart the router has forgotten its mappings, so ``renew`` re-makes them and says so
(``restarted``) rather than trusting what it had.
"""

from __future__ import annotations

from typing import Literal

from checks.errors import MappingError
from checks.model import PortMapping
from checks.portmap.pcp import LONGEST_LIFETIME_S, PcpClient, PcpMapping, new_nonce

Protocol = Literal["tcp", "udp"]


def _mapping_error(message: str, code: int | None = None) -> Exception:
    return MappingError(message, code=code)


class PcpMapper:
    """Mappings through PCP on ``server`` (the gateway; or a carrier's PCP server)."""

    name = "PCP"
    via = "pcp"
    keep_lease_s = LONGEST_LIFETIME_S

    def __init__(
        self, server: str, local_address: str | None, *, client: PcpClient | None = None, source: str | None = None
    ) -> None:
        self.server = server
        self._local = local_address
        self.client = client or PcpClient(server, source=source)
        self.made: dict[tuple[int, str], PcpMapping] = {}  # (external port, protocol) -> mapping
        self.lifetimes: dict[tuple[int, str], int] = {}
        self.notes: list[str] = []

    @property
    def lan_address(self) -> str | None:
        return self._local

    @property
    def restarted(self) -> bool:
        """The router restarted (lost its mappings) since this mapper first heard from it."""
        return self.client.epoch.lost_state

    def adopt(self, mapping: PcpMapping) -> None:
        """Take over a mapping made by an earlier run (its nonce from the ledger)."""
        self.made[(mapping.external_port, mapping.protocol)] = mapping
        self.lifetimes[(mapping.external_port, mapping.protocol)] = mapping.lifetime

    async def existing(self, external_port: int, protocol: Protocol, *, strict: bool = False) -> PortMapping | None:
        m = self.made.get((external_port, protocol))
        if m is not None:
            return PortMapping(
                m.external_port,
                "TCP" if protocol == "tcp" else "UDP",
                m.client_ip,
                m.internal_port,
                "ddns-wizard (PCP)",
                m.lifetime,
            )
        if strict:
            raise _mapping_error("PCP cannot list the router's mappings")
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
        if self._local and internal_host != self._local:
            raise _mapping_error(
                f"PCP maps ports only to the computer that asks ({self._local}), not to {internal_host}", code=606
            )
        lifetime = lease_s if lease_s > 0 else LONGEST_LIFETIME_S  # 0 would delete
        nonce = new_nonce()
        mapping, reply = await self.client.map(
            protocol, internal_port, external_port=external_port, lifetime=lifetime, nonce=nonce
        )
        if mapping is None:
            if reply.result_code is not None:
                # A refusal with a result code created nothing; 606 puts it among the mapping
                # errors that mean "refused before creating" (checks/ports.py).
                raise _mapping_error(f"PCP refused: {reply.error}", code=606)
            # No answer: the router may have made it all the same. Keep the nonce, so the
            # cleanup can delete it (miniupnpd finds it by internal port and checks the nonce).
            self.made[(external_port, protocol)] = PcpMapping(
                self.server, protocol, internal_port, external_port, None, lifetime, nonce, self._local or ""
            )
            raise _mapping_error(f"PCP: {reply.error or 'no reply'}")
        if mapping.lifetime == 0:
            raise _mapping_error("PCP granted a mapping with no lifetime", code=606)
        key = (mapping.external_port, protocol)
        self.made[key] = mapping
        self.lifetimes[key] = mapping.lifetime
        return mapping.external_port

    async def remove(self, external_port: int, protocol: Protocol, internal_port: int) -> None:
        m = self.made.get((external_port, protocol))
        if m is None:
            raise _mapping_error(
                "this run holds no PCP mapping of that port (its nonce is unknown, so the "
                "router would refuse the delete); it ends with its lifetime"
            )
        reply = await self.client.delete(m)
        if not reply.ok:
            raise _mapping_error(f"PCP refused to delete it: {reply.error or 'no reply'}")
        self.made.pop((external_port, protocol), None)

    async def renew(self, external_port: int, protocol: Protocol) -> tuple[PcpMapping | None, str]:
        """Renew one mapping (same nonce); after a router restart, re-make it. (mapping, what happened)."""
        m = self.made.get((external_port, protocol))
        if m is None:
            return None, "not held by this run"
        before = self.restarted
        renewed, reply = await self.client.renew(m, lifetime=max(m.lifetime, 1))
        if renewed is None:
            return None, f"renewal refused: {reply.error or 'no reply'}"
        self.made[(renewed.external_port, protocol)] = renewed
        self.lifetimes[(renewed.external_port, protocol)] = renewed.lifetime
        if self.restarted and not before:
            return renewed, (
                f"the router restarted (its PCP epoch went back) and had forgotten the mapping: "
                f"made again as {renewed.external_port}/{protocol}"
            )
        return renewed, "renewed"
