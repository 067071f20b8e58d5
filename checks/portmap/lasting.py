"""Lasting forwards: the ones ``ports check --keep``, ``upnp add`` and the wizard's
"keep this forward" leave on the router on purpose, in a ledger of ours.

The ledger (``forwards.json`` in the user's state directory) lists each forward
with how it was made (``via``: ``upnp`` | ``pcp`` | ``natpmp`` for IPv4 mappings,
``upnp-pinhole`` | ``pcp-pinhole`` for IPv6 firewall openings), what the router
granted, when to renew it, and what is needed to touch it again later: a PCP
mapping's nonce (a delete or renewal with another nonce is refused), an IGDv2
pinhole's UniqueID and control URL.

Leases: UPnP asks for 0 (permanent; miniupnpd makes that a week) or the longest
the router accepts; NAT-PMP and PCP have no permanent mapping (0 deletes) and IGDv2
pinholes last at most a day, so those are renewed by ``watch`` at half of what was
granted (``due``). ``upnp list`` marks the router's mappings that are in here as
ours.

Nothing here is a secret; the file is written atomically, mode 0600, and a ledger
that cannot be read or written never stops a run (a note says so).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from checks.model import PortProtocol

Via = Literal["upnp", "pcp", "natpmp", "upnp-pinhole", "pcp-pinhole"]
VIAS: tuple[str, ...] = ("upnp", "pcp", "natpmp", "upnp-pinhole", "pcp-pinhole")
MAX_LEDGER_BYTES = 256 * 1024
MAX_FORWARDS = 256


def default_ledger_path() -> Path:
    from platformdirs import user_state_dir  # lazy, like the prober pacing file

    return Path(user_state_dir("ddns-wizard")) / "forwards.json"


@dataclass
class LastingForward:
    via: str
    external_port: int
    protocol: PortProtocol
    internal_host: str
    internal_port: int
    lease_s: int = 0  # granted; 0 = permanent
    created_at: float = 0.0
    renewed_at: float = 0.0
    router: str | None = None  # gateway address or IGD location
    pcp: dict[str, Any] | None = None  # checks.portmap.pcp.mapping_record(...)
    pinhole_id: int | None = None  # IGDv2 UniqueID
    control_url: str | None = None  # IGDv2 firewall control URL (IPv6)
    note: str | None = None  # what the last renewal said

    @property
    def key(self) -> tuple[str, int, str]:
        family = "6" if self.via.endswith("pinhole") else "4"
        return (family, self.external_port, self.protocol)

    @property
    def renew_at(self) -> float | None:
        """When ``watch`` renews it: half the granted lease after the last grant; None = permanent."""
        if self.lease_s <= 0:
            return None
        return (self.renewed_at or self.created_at) + self.lease_s / 2

    def label(self) -> str:
        where = f"[{self.internal_host}]" if ":" in self.internal_host else self.internal_host
        return f"{self.external_port}/{self.protocol} → {where}:{self.internal_port} ({self.via})"


def _forward_from(raw: Any) -> LastingForward | None:
    if not isinstance(raw, dict):
        return None
    word = str(raw.get("protocol", "")).lower()
    protocol: PortProtocol | None = "tcp" if word == "tcp" else "udp" if word == "udp" else None
    if protocol is None:
        return None
    try:
        fwd = LastingForward(
            via=str(raw["via"]),
            external_port=int(raw["external_port"]),
            protocol=protocol,
            internal_host=str(raw["internal_host"])[:64],
            internal_port=int(raw["internal_port"]),
            lease_s=max(0, int(raw.get("lease_s") or 0)),
            created_at=float(raw.get("created_at") or 0),
            renewed_at=float(raw.get("renewed_at") or 0),
            router=str(raw["router"])[:300] if raw.get("router") else None,
            pcp=raw.get("pcp") if isinstance(raw.get("pcp"), dict) else None,
            pinhole_id=int(raw["pinhole_id"]) if raw.get("pinhole_id") is not None else None,
            control_url=str(raw["control_url"])[:300] if raw.get("control_url") else None,
            note=str(raw["note"])[:300] if raw.get("note") else None,
        )
    except (KeyError, TypeError, ValueError):
        return None
    if fwd.via not in VIAS:
        return None
    if not (1 <= fwd.external_port <= 65535 and 1 <= fwd.internal_port <= 65535):
        return None
    return fwd


@dataclass
class ForwardsLedger:
    """The lasting forwards we made. ``path`` None keeps it in memory (tests, no state dir)."""

    path: Path | None = None
    forwards: list[LastingForward] = field(default_factory=list)
    problem: str | None = None  # why the file could not be read or written
    _loaded: bool = False

    @classmethod
    def default(cls) -> ForwardsLedger:
        try:
            return cls(default_ledger_path())
        except Exception as exc:  # no state directory: this run only
            return cls(None, problem=f"no state directory for the forwards ledger ({exc})")

    def load(self) -> list[LastingForward]:
        if self._loaded:
            return self.forwards
        self._loaded = True
        if self.path is None:
            return self.forwards
        try:
            with open(self.path, "rb") as fh:
                data = fh.read(MAX_LEDGER_BYTES + 1)
        except FileNotFoundError:
            return self.forwards
        except OSError as exc:
            self.problem = f"cannot read {self.path}: {exc.strerror or exc}"
            return self.forwards
        try:
            if len(data) > MAX_LEDGER_BYTES:
                raise ValueError("too large")
            doc = json.loads(data.decode("utf-8"))
            items = doc.get("forwards") if isinstance(doc, dict) else None
            if not isinstance(items, list):
                raise ValueError("no forwards list")
        except (ValueError, UnicodeDecodeError) as exc:
            self.problem = f"{self.path} is damaged ({exc}); it will be rewritten"
            return self.forwards
        self.forwards = [f for f in (_forward_from(i) for i in items[:MAX_FORWARDS]) if f is not None]
        return self.forwards

    def save(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"forwards": [asdict(f) for f in self.forwards]}, fh, indent=1)
            os.replace(tmp, self.path)
        except OSError as exc:
            self.problem = f"cannot write {self.path}: {exc.strerror or exc}"

    def record(self, fwd: LastingForward) -> None:
        self.load()
        now = time.time()
        fwd.created_at = fwd.created_at or now
        fwd.renewed_at = fwd.renewed_at or fwd.created_at
        self.forwards = [f for f in self.forwards if f.key != fwd.key][-(MAX_FORWARDS - 1) :] + [fwd]
        self.save()

    def forget(self, external_port: int, protocol: str, *, family: int = 4) -> LastingForward | None:
        self.load()
        key = (str(family), external_port, protocol.lower())
        gone = next((f for f in self.forwards if f.key == key), None)
        if gone is not None:
            self.forwards = [f for f in self.forwards if f.key != key]
            self.save()
        return gone

    def find(self, external_port: int, protocol: str, *, family: int = 4) -> LastingForward | None:
        key = (str(family), external_port, protocol.lower())
        return next((f for f in self.load() if f.key == key), None)

    def is_ours(self, external_port: int, protocol: str, internal_host: str) -> bool:
        """Does this router mapping (from `upnp list`) match a forward we keep?"""
        f = self.find(external_port, protocol)
        return f is not None and f.internal_host == internal_host

    def due(self, now: float | None = None) -> list[LastingForward]:
        now = time.time() if now is None else now
        return [f for f in self.load() if f.renew_at is not None and f.renew_at <= now]


Renewer = Callable[[LastingForward], Awaitable[tuple[int | None, str]]]


async def renew_due(ledger: ForwardsLedger, renewers: dict[str, Renewer], *, now: float | None = None) -> list[str]:
    """Renew every forward that is due with the renewer for its ``via``; one sentence each.

    A renewer returns (the newly granted lease, what happened) or (None, why it failed).
    Failures are kept (the next round tries again) and said; nothing here raises."""
    notes: list[str] = []
    changed = False
    for fwd in ledger.due(now):
        renew = renewers.get(fwd.via)
        if renew is None:
            continue
        try:
            lease, what = await renew(fwd)
        except Exception as exc:  # a renewal failure is data
            lease, what = None, f"{type(exc).__name__}: {exc}"
        if lease is not None:
            fwd.lease_s, fwd.renewed_at = lease, time.time() if now is None else now
            notes.append(f"forward {fwd.label()}: {what}")
        else:
            notes.append(f"forward {fwd.label()}: could not renew ({what}); trying again next round")
        fwd.note = what[:300]
        changed = True
    if changed:
        ledger.save()
    return notes


def forward_from_created(m: Any, via: str) -> LastingForward:
    """A ledger entry for a kept mapping (checks.portmap.ledger.CreatedMapping)."""
    mapper = m.mapper
    key = (m.external_port, m.protocol)
    lease = int(getattr(mapper, "lifetimes", {}).get(key, m.lease_s) or 0)
    pcp = None
    made = getattr(mapper, "made", {}).get(key)
    if made is not None:
        from checks.portmap.pcp import mapping_record

        pcp = mapping_record(made)
        lease = made.lifetime
    router = (
        getattr(mapper, "gateway", None)
        or getattr(mapper, "server", None)
        or getattr(getattr(mapper, "igd", None), "location", None)
    )
    return LastingForward(
        via=via,
        external_port=m.external_port,
        protocol=m.protocol,
        internal_host=m.internal_host,
        internal_port=m.internal_port,
        lease_s=lease,
        router=str(router) if router else None,
        pcp=pcp,
    )


# --------------------------------------------------------------------------- acting on kept forwards


async def remove_kept(fwd: LastingForward, *, gateway: str | None = None) -> tuple[bool, str]:
    """Remove a kept PCP/NAT-PMP mapping or an IPv6 pinhole from the router. (done, what happened).

    A PCP mapping is deleted with its own nonce (a fresh one is refused); an IGDv2 pinhole by
    its UniqueID, asked from the address it opens (the router refuses anyone else)."""
    if fwd.via in ("pcp", "pcp-pinhole"):
        from checks.portmap.pcp import PcpClient, mapping_from_record

        mapping = mapping_from_record(fwd.pcp or {})
        if mapping is None:
            return False, "the ledger holds no usable PCP nonce for it"
        source = fwd.internal_host if fwd.via == "pcp-pinhole" else None
        reply = await PcpClient(mapping.server, source=source).delete(mapping)
        if reply.ok:
            return True, f"the PCP {'pinhole' if source else 'mapping'} {fwd.label()}"
        return False, f"PCP: {reply.error or 'no reply'}"
    if fwd.via == "upnp-pinhole":
        from checks.portmap.pinhole import PinholeClient

        if fwd.pinhole_id is None or not fwd.control_url:
            return False, "the ledger does not say which pinhole it is"
        try:
            removed = await PinholeClient(fwd.control_url, fwd.internal_host).delete(fwd.pinhole_id)
        except Exception as exc:
            return False, str(exc)
        return True, (
            f"the IPv6 pinhole {fwd.label()}"
            if removed
            else f"the IPv6 pinhole {fwd.label()} (the router no longer had it)"
        )
    if fwd.via == "natpmp":
        from checks.probes.natpmp import natpmp_map

        server = gateway or fwd.router
        if not server:
            return False, "no gateway to ask"
        removal = await natpmp_map(server, fwd.protocol, fwd.internal_port, 0, 0)
        return (True, f"the NAT-PMP mapping {fwd.label()}") if removal.ok else (False, removal.error or "no reply")
    return False, f"{fwd.via} forwards are removed through the router's UPnP IGD"


def epoch_went_back(old_epoch: int | None, old_at: float, new_epoch: int | None, new_at: float) -> bool:
    """RFC 6887 §8.5 across runs (wall-clock times): did the server restart between two replies?"""
    if old_epoch is None or new_epoch is None or not old_at:
        return False
    elapsed = max(0.0, new_at - old_at)
    return new_epoch + 2 < old_epoch + elapsed - elapsed / 16


def default_renewers() -> dict[str, Renewer]:
    """How ``watch`` renews each kind of kept forward (each returns the granted lease or None)."""

    async def pcp(fwd: LastingForward) -> tuple[int | None, str]:
        from checks.portmap.pcp import PcpClient, mapping_from_record, mapping_record

        mapping = mapping_from_record(fwd.pcp or {})
        if mapping is None:
            return None, "no usable PCP nonce in the ledger"
        client = PcpClient(mapping.server, source=fwd.internal_host if fwd.via == "pcp-pinhole" else None)
        renewed, reply = await client.renew(mapping, lifetime=max(mapping.lifetime, 1))
        if renewed is None:
            return None, reply.error or "no reply"
        fwd.pcp = mapping_record(renewed)
        if epoch_went_back(mapping.epoch, mapping.granted_at, renewed.epoch, renewed.granted_at):
            return renewed.lifetime, (
                "the router restarted (its PCP epoch went back) and had forgotten it: "
                f"made again for {renewed.lifetime} s"
            )
        return renewed.lifetime, f"renewed for {renewed.lifetime} s"

    async def natpmp(fwd: LastingForward) -> tuple[int | None, str]:
        from checks.probes.natpmp import natpmp_map

        if not fwd.router:
            return None, "no gateway recorded"
        reply = await natpmp_map(fwd.router, fwd.protocol, fwd.internal_port, fwd.external_port, max(fwd.lease_s, 3600))
        if not reply.ok:
            return None, reply.error or "no reply"
        return int(reply.lifetime or fwd.lease_s), f"renewed for {reply.lifetime} s"

    async def upnp_pinhole(fwd: LastingForward) -> tuple[int | None, str]:
        from checks.portmap.pinhole import Pinhole, PinholeClient, PinholeError

        if fwd.pinhole_id is None or not fwd.control_url:
            return None, "the ledger does not say which pinhole it is"
        client = PinholeClient(fwd.control_url, fwd.internal_host)
        hole = Pinhole(fwd.pinhole_id, fwd.internal_host, fwd.internal_port, fwd.protocol, fwd.lease_s)
        try:
            updated = await client.update(hole, fwd.lease_s)
            return updated.lease_s, f"renewed for {updated.lease_s} s"
        except PinholeError as exc:
            if exc.code not in (704, 402):
                raise
        again = await client.add(fwd.internal_port, fwd.protocol, fwd.lease_s)
        fwd.pinhole_id = again.unique_id
        return again.lease_s, "the router had lost the pinhole (restarted?): opened again"

    async def upnp(fwd: LastingForward) -> tuple[int | None, str]:
        # A router that caps "permanent" UPnP leases (miniupnpd: a week) reported a lease: add the
        # same mapping again before it ends (an IGD accepts re-adding a mapping to the same host).
        from checks.probes.upnp import IgdClient

        if not fwd.router:
            return None, "no UPnP IGD recorded"
        igd = await IgdClient.connect(fwd.router)
        await igd.add_mapping(fwd.external_port, fwd.protocol, fwd.internal_host, fwd.internal_port, "ddns-wizard", 0)
        current = await igd.get_mapping(fwd.external_port, fwd.protocol)
        lease = current.lease_s if current is not None else 0
        return lease, f"renewed ({'permanent' if not lease else f'{lease} s'})"

    return {"pcp": pcp, "pcp-pinhole": pcp, "natpmp": natpmp, "upnp-pinhole": upnp_pinhole, "upnp": upnp}


def watch_hooks(
    ledger: ForwardsLedger, renewers: dict[str, Renewer] | None = None
) -> tuple[Callable[[float], Awaitable[list[str]]], Callable[[], float | None]]:
    """(renew_forwards, forwards_due) for checks.ddns.watch.Watcher."""

    async def renew(now: float) -> list[str]:
        return await renew_due(ledger, renewers or default_renewers(), now=now)

    def due() -> float | None:
        times = [f.renew_at for f in ledger.load() if f.renew_at is not None]
        return min(times) if times else None

    return renew, due
