"""pytest fixtures for the network lab (registered from tests/conftest.py).

- ``lab_factory(topology, *, ipv6=False, latency_ms=0, loss_pct=0.0, block_inbound=(),
  block_outbound=(), upnp=None) -> Lab``: function-scoped; every lab it made is torn
  down when the test ends, pass or fail.
- Module-scoped shared labs (treat them as read-only): ``lab_public``, ``lab_home``,
  ``lab_home_no_upnp``, ``lab_double_nat``, ``lab_cgnat``, ``lab_cgnat_v6``, ``lab_offline``.

The first lab fixture of a session removes leftovers of dead earlier runs (see
``_netns.sweep_leftovers``). Without root or the tools, lab fixtures skip with the
reason (tests/conftest.py turns that skip into a failure under CI=true).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ._netns import sweep_leftovers
from .topology import Lab, Options, required_tools

APT_HINT = (
    "apt-get install iproute2 nftables miniupnpd-nftables miniupnpc curl iputils-ping dnsutils knot unbound coturn"
)


def lab_unavailable_reason(opts: Options | None = None) -> str | None:
    """Why the lab cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "the network lab needs root (network namespaces, veth, nftables): run the tests as root"
    missing = [t for t in required_tools(opts) if shutil.which(t) is None]
    if missing:
        return f"the network lab needs {', '.join(missing)} (Debian: {APT_HINT})"
    if not os.path.exists("/dev/net/tun"):
        return "the network lab needs /dev/net/tun (latency/loss relay)"
    return None


@pytest.fixture(scope="session")
def _lab_session() -> Iterator[None]:
    reason = lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    sweep_leftovers()
    yield


LabFactory = Callable[..., Lab]


@pytest.fixture
def lab_factory(_lab_session: None) -> Iterator[LabFactory]:
    made: list[Lab] = []

    def make(
        topology: str,
        *,
        ipv6: bool = False,
        latency_ms: float = 0,
        loss_pct: float = 0.0,
        block_inbound: tuple[str, ...] | list[str] = (),
        block_outbound: tuple[str, ...] | list[str] = (),
        upnp: bool | None = None,
        router_ext_ip: str | None = None,
        upnp_igd: bool = True,
        carrier_pcp: bool = False,
    ) -> Lab:
        opts = Options(
            topology,
            ipv6=ipv6,
            latency_ms=float(latency_ms),
            loss_pct=float(loss_pct),
            block_inbound=tuple(block_inbound),
            block_outbound=tuple(block_outbound),
            upnp=upnp,
            router_ext_ip=router_ext_ip,
            upnp_igd=upnp_igd,
            carrier_pcp=carrier_pcp,
        )
        lab = Lab(opts)
        made.append(lab)
        return lab.up()

    try:
        yield make
    finally:
        for lab in reversed(made):
            lab.down()


def _shared_lab(topology: str, **options: Any) -> Any:
    @pytest.fixture(scope="module")
    def shared(_lab_session: None) -> Iterator[Lab]:
        lab = Lab(Options(topology, **options))
        try:
            yield lab.up()
        finally:
            lab.down()

    shared.__doc__ = f"A shared, module-scoped `{topology}` lab {options or ''} (read-only use)."
    return shared


lab_public = _shared_lab("public")
lab_home = _shared_lab("home")
lab_home_no_upnp = _shared_lab("home-no-upnp")
lab_double_nat = _shared_lab("double-nat")
lab_cgnat = _shared_lab("cgnat")
lab_cgnat_v6 = _shared_lab("cgnat", ipv6=True)
lab_offline = _shared_lab("offline")
