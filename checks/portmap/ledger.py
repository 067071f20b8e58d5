"""The mapping ledger: every mapping a run created, so all of them are removed afterwards
(also on errors and cancellation)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from checks.errors import MappingError
from checks.model import PortProtocol as Protocol
from checks.portmap.mapper import TEST_LEASE_S


@dataclass
class CreatedMapping:
    mapper: Any
    external_port: int
    protocol: Protocol
    internal_host: str
    internal_port: int
    uncertain: bool = False  # the add call failed in a way that may have created it anyway
    keep: bool = False  # --keep: left in place when the test completes
    lease_s: int = TEST_LEASE_S

    def describe(self) -> str:
        return (
            f"{self.mapper.name} mapping {self.external_port}/{self.protocol.upper()} → "
            f"{self.internal_host}:{self.internal_port}"
        )


@dataclass
class MappingLedger:
    """Every mapping the test created, so all of them are removed afterwards.

    ``leftovers`` lists (mapping description, error) for removals that failed: the
    caller must show them loudly."""

    created: list[CreatedMapping] = field(default_factory=list)
    removed: list[CreatedMapping] = field(default_factory=list)
    leftovers: list[tuple[str, str]] = field(default_factory=list)

    def record(self, mapping: CreatedMapping) -> None:
        self.created.append(mapping)

    def release_kept(self) -> list[CreatedMapping]:
        """The test completed: mappings made to keep leave the ledger (they are not removed)."""
        kept = [m for m in self.created if m.keep and not m.uncertain and m not in self.removed]
        self.created = [m for m in self.created if m not in kept]
        return kept

    async def remove_all(self, *, timeout_s: float = 5.0) -> None:
        pending = [m for m in self.created if m not in self.removed]

        async def remove_one(m: CreatedMapping) -> None:
            try:
                async with asyncio.timeout(timeout_s):
                    await m.mapper.remove(m.external_port, m.protocol, m.internal_port)
                self.removed.append(m)
            except TimeoutError:
                self.leftovers.append((m.describe(), f"the router did not answer within {timeout_s:g} s"))
            except MappingError as exc:
                if m.uncertain and not await self._still_there(m):
                    self.removed.append(m)  # never created after all
                else:
                    self.leftovers.append((m.describe(), str(exc)))
            except Exception as exc:  # never let one failure stop the other removals
                self.leftovers.append((m.describe(), f"{type(exc).__name__}: {exc}"))

        # One at a time: a router's UPnP server answers its SOAP requests one after the
        # other, and 50 removals sent at once left most of them unanswered within the
        # deadline (mappings left behind, seen in the lab with miniupnpd and 50 ports).
        for m in pending:
            await remove_one(m)

    @staticmethod
    async def _still_there(m: CreatedMapping) -> bool:
        """Could this uncertain mapping exist? Only a router that answered "no" says no."""
        try:
            async with asyncio.timeout(2.0):
                current = await m.mapper.existing(m.external_port, m.protocol, strict=True)
        except Exception:
            return True  # could not ask (router down, NAT-PMP): report it rather than guess
        return current is not None and current.internal_host == m.internal_host


async def remove_shielded(ledger: MappingLedger, *, timeout_s: float = 5.0) -> None:
    """Remove every recorded mapping even while this task is being cancelled.

    A second Ctrl-C during cleanup must not leave mappings behind: the removal runs
    in its own task and we keep waiting for it (it has its own deadline)."""
    task = asyncio.ensure_future(ledger.remove_all(timeout_s=timeout_s))
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            continue
        except Exception:
            break
