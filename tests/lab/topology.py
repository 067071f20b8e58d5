"""The network lab's topology layer: real home networks in Linux network namespaces.

``Lab(Options("home")).up()`` builds, in a few seconds::

    host (192.168.1.100) -- router (NAT, miniupnpd) -- isp -- inet (lab services)

with veth pairs whose ends all live in lab namespaces (never the machine's own),
nftables for NAT and filters, miniupnpd for UPnP IGD + NAT-PMP, and, for latency
or loss, two TAP devices joined by ``relay.py``. The lab-services helper's
``tests/lab/internet.py`` starts the services in the ``inet`` namespace.

See LAB_API.md for the contract; ``python -m tests.lab up home`` for a lab by hand.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import ipaddress
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from . import plan
from ._netconf import (
    DSLITE_IF,
    TOPOLOGIES,
    NamespaceConfig,
    Options,
    edge_role,
    isp_nft,
    links,
    namespace_configs,
    roles,
)
from ._netns import (
    LabSetupError,
    create_namespaces,
    delete_namespaces,
    kill_namespace_processes,
    new_prefix,
    run_checked,
    write_resolv_conf,
)

__all__ = ["TOPOLOGIES", "Lab", "LabSetupError", "Options", "make_lab", "required_tools"]

MINIUPNPD = "/usr/sbin/miniupnpd"
RELAY_SCRIPT = Path(__file__).with_name("relay.py")
SOFTWIRE_SCRIPT = Path(__file__).with_name("softwire.py")
VENV_BIN = Path(sys.executable).parent
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy")
_MINIUPNPD_READY = "Listening for NAT-PMP/PCP traffic"
_MINIUPNPD_READY_NO_NATPMP = "HTTP listening on port"
LAB_ROUTER_MAKER = "Lab Networks"
LAB_ROUTER_MODEL = "LR-1000 Home Gateway"

_live_labs: set[Lab] = set()
_live_lock = threading.Lock()


def required_tools(opts: Options | None = None) -> list[str]:
    """Binaries the lab needs (for a clear skip reason when one is missing)."""
    # the topology's own, the tests' measuring tools, and the lab internet's daemons
    tools = ["ip", "nft", "upnpc", "curl", "ping", "dig", "knotd", "unbound", "turnserver"]
    if opts is None or opts.runs_upnp:
        tools.append(MINIUPNPD)
    return tools


def _clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without proxies (the lab has none), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    if extra:
        env.update(extra)
    return env


class Lab:
    """One running lab (see LAB_API.md). Build with ``up()``, always end with ``down()``."""

    def __init__(self, opts: Options, *, keep_workdir: bool = False) -> None:
        self.opts = opts
        self.topology = opts.topology
        self.ipv6 = opts.ipv6
        self.prefix = new_prefix()
        self.ns: dict[str, str] = {role: f"{self.prefix}-{role}" for role in roles(opts.topology)}
        self.keep_workdir = keep_workdir
        self.workdir: Path = Path(tempfile.gettempdir()) / f"{self.prefix}-lab-unbuilt"
        self.internet: Any = None
        self.timings: dict[str, float] = {}
        self._procs: list[subprocess.Popen[Any]] = []
        self._miniupnpd: subprocess.Popen[Any] | None = None
        self._relay: subprocess.Popen[str] | None = None
        self._softwire: subprocess.Popen[str] | None = None
        self._is_up = False
        topo = opts.topology
        self._edge_ipv4 = {
            "public": plan.PUBLIC_HOST_IP,
            "home": plan.ROUTER_WAN_IP,
            "home-no-upnp": plan.ROUTER_WAN_IP,
            "double-nat": plan.ISPBOX_WAN_IP,
            "cgnat": plan.CGNAT_ROUTER_WAN,
        }.get(topo)
        # The ISP's NAT egress: the CGNAT's pool address, or DS-Lite's AFTR.
        self._cgnat_pool_ip = plan.DSLITE_POOL_IP if topo == "ds-lite" else plan.CGNAT_POOL_IP
        self.router_wan_ipv4: str | None = {
            "home": plan.ROUTER_WAN_IP,
            "home-no-upnp": plan.ROUTER_WAN_IP,
            "double-nat": plan.ISPBOX_ROUTER_WAN,
            "cgnat": plan.CGNAT_ROUTER_WAN,
            "ds-lite": plan.DSLITE_B4,
        }.get(topo)
        self.host_ipv4 = plan.PUBLIC_HOST_IP if topo == "public" else plan.HOME_HOST
        self.gateway_ipv4 = plan.CUSTOMER_GW if topo == "public" else plan.HOME_GW
        self.host_ipv6: str | None = plan.HOME_V6_HOST if opts.ipv6 else None

    # ------------------------------------------------------------------ facts
    @property
    def expected_public_ipv4(self) -> str | None:
        """What an IP echo in the lab's internet sees (None: the host cannot reach it)."""
        if self.topology == "offline":
            return None
        if self.topology in ("cgnat", "ds-lite"):
            return self._cgnat_pool_ip
        return self._edge_ipv4

    @property
    def config_path(self) -> Path:
        return self.workdir / "config.toml"

    @property
    def ca_path(self) -> Path | None:
        ca = getattr(self.internet, "ca_path", None)
        return Path(ca) if ca else None

    @property
    def tool_env(self) -> dict[str, str]:
        home = self.workdir / "home"
        extra = {
            "DDNS_WIZARD_CONFIG": str(self.config_path),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_STATE_HOME": str(home / ".local/state"),
        }
        if self.ca_path:
            extra["SSL_CERT_FILE"] = str(self.ca_path)
        return _clean_env(extra)

    def __repr__(self) -> str:
        return f"<Lab {self.topology} {self.prefix} {'up' if self._is_up else 'down'}>"

    # ------------------------------------------------------------------ running things inside
    def _netns_argv(self, ns: str, argv: Iterable[str]) -> list[str]:
        if ns not in self.ns:
            raise ValueError(f"lab {self.topology} has no {ns!r} namespace (has: {', '.join(self.ns)})")
        return ["ip", "netns", "exec", self.ns[ns], *[str(a) for a in argv]]

    def run(
        self,
        argv: Iterable[str],
        *,
        ns: str = "host",
        timeout: float = 30,
        env: Mapping[str, str] | None = None,
        check: bool = False,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside a lab namespace (by role) and capture its output (text).

        ``env`` is added to this process's environment (minus proxy variables)."""
        return subprocess.run(
            self._netns_argv(ns, argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_clean_env(env),
            check=check,
            input=input,
        )

    def popen(
        self, argv: Iterable[str], *, ns: str = "host", env: Mapping[str, str] | None = None, **kw: Any
    ) -> subprocess.Popen[Any]:
        """Start ``argv`` inside a lab namespace; it is killed at teardown."""
        proc = subprocess.Popen(self._netns_argv(ns, argv), env=_clean_env(env), **kw)
        self._procs.append(proc)
        return proc

    def tool(
        self,
        *args: str,
        timeout: float = 60,
        env: Mapping[str, str] | None = None,
        config: str | os.PathLike[str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``ddns-wizard`` (this venv's console script) in the host namespace."""
        tool_env = self.tool_env
        if config is not None:
            tool_env["DDNS_WIZARD_CONFIG"] = str(config)
        if env:
            tool_env.update(env)
        argv = [str(VENV_BIN / "ddns-wizard"), *args]
        return subprocess.run(
            self._netns_argv("host", argv), capture_output=True, text=True, timeout=timeout, env=tool_env, input=input
        )

    # ------------------------------------------------------------------ config file
    def endpoints(self) -> dict[str, Any]:
        if self.internet is not None:
            return dict(self.internet.endpoints())
        return fallback_endpoints()

    def write_config(
        self, hosts: Iterable[Mapping[str, Any]] | None = None, endpoints_override: Mapping[str, Any] | None = None
    ) -> Path:
        """(Re)write the lab config (DESIGN.md format, mode 0600): lab endpoints only."""
        import tomli_w

        from checks.config import write_private_file

        endpoints = self.endpoints()
        endpoints.update(endpoints_override or {})
        data: dict[str, Any] = {"endpoints": endpoints}
        if hosts:
            data["hosts"] = [dict(h) for h in hosts]
        write_private_file(self.config_path, tomli_w.dumps(data).encode("utf-8"))
        return self.config_path

    # ------------------------------------------------------------------ knobs after start
    def set_isp_address(self, new_ipv4: str) -> None:
        """Change the public address the ISP gives this customer; the echo then sees it."""
        ipaddress.IPv4Address(new_ipv4)
        if self.topology == "offline":
            raise LabSetupError("the offline topology has no ISP address to change")
        if self.topology in ("cgnat", "ds-lite"):
            old = self._cgnat_pool_ip
            self._cgnat_pool_ip = new_ipv4
            nft = "delete table inet isp\n" + isp_nft(self.opts, new_ipv4)
            self._nft("isp", nft)
            self._ip_batch("isp", [f"route del blackhole {old}/32", f"route add blackhole {new_ipv4}/32"])
            return
        edge = edge_role(self.topology)
        assert edge is not None and self._edge_ipv4 is not None
        old = self._edge_ipv4
        customer_net = ipaddress.ip_network(plan.CUSTOMER_NET)
        onlink = "" if ipaddress.ip_address(new_ipv4) in customer_net else " onlink"
        self._ip_batch(
            edge,
            [
                f"addr del {old}/24 dev wan0",
                f"addr add {new_ipv4}/24 dev wan0",
                f"route replace default via {plan.CUSTOMER_GW} dev wan0{onlink}",
            ],
        )
        isp_lines = []
        if ipaddress.ip_address(old) not in customer_net:
            isp_lines.append(f"route del {old}/32 dev cust0")
        if onlink:
            isp_lines.append(f"route replace {new_ipv4}/32 dev cust0")
        if isp_lines:
            self._ip_batch("isp", isp_lines)
        self._edge_ipv4 = new_ipv4
        if self.topology == "public":
            self.host_ipv4 = new_ipv4
        elif self.topology in ("home", "home-no-upnp"):
            self.router_wan_ipv4 = new_ipv4

    def set_ipv6_prefix(self, new_prefix: str) -> None:
        """The ISP renumbers the home LAN (``home`` with ipv6=True): the LAN's /64 moves to
        ``new_prefix``; the router and the host keep their interface identifiers (::1, ::100)
        on it and the old addresses go away, as after a prefix change on a real line."""
        if self.topology not in ("home", "home-no-upnp") or not self.host_ipv6:
            raise LabSetupError("set_ipv6_prefix needs the home topology with ipv6=True")
        net = ipaddress.IPv6Network(new_prefix)
        if net.prefixlen != 64:
            raise ValueError("give a /64")
        old_net = ipaddress.IPv6Network(f"{self.host_ipv6}/64", strict=False)
        old_router = str(old_net.network_address + 1)
        router = str(net.network_address + 1)
        host = str(net.network_address + 0x100)
        self._ip_batch(
            "isp", [f"route del {old_net} via {plan.ROUTER_V6_WAN}", f"route add {net} via {plan.ROUTER_V6_WAN}"]
        )
        self._ip_batch("router", [f"addr del {old_router}/64 dev lan0", f"addr add {router}/64 dev lan0 nodad"])
        self._ip_batch(
            "host",
            [
                f"addr del {self.host_ipv6}/64 dev lan0",
                f"addr add {host}/64 dev lan0 nodad",
                f"route replace ::/0 via {router} dev lan0",
            ],
        )
        self.host_ipv6 = host

    def allow_inbound_v6(self, port: int, proto: str = "tcp") -> None:
        """Open the home router's IPv6 firewall for new connections to the host's port."""
        if "router" not in self.ns or not self.host_ipv6:
            raise LabSetupError("allow_inbound_v6 needs a router and ipv6=True")
        self._nft(
            "router", f"add rule inet router lab_inbound ip6 daddr {self.host_ipv6} {proto} dport {int(port)} accept\n"
        )

    def forward_port(
        self, port: int, *, proto: str = "tcp", to: str | None = None, to_port: int | None = None, on: str = "router"
    ) -> None:
        """A port forward made on the router's admin page (no UPnP): new inbound flows to
        WAN ``port`` go to ``to`` (default: the host; e.g. plan.HOME_OTHER, a LAN address
        where nothing answers) port ``to_port``. ``on="ispbox"`` forwards on the ISP box
        of a double NAT instead (default target: the user's router)."""
        if on not in ("router", "ispbox") or on not in self.ns:
            raise LabSetupError(f"lab {self.topology} has no {on} to forward ports on")
        if proto not in ("tcp", "udp"):
            raise ValueError(f"proto must be tcp or udp, not {proto!r}")
        target = to or (plan.ISPBOX_ROUTER_WAN if on == "ispbox" else self.host_ipv4)
        ipaddress.IPv4Address(target)
        dest_port = int(to_port or port)
        table = "router" if on == "router" else "ispbox"
        self._nft(
            on,
            f'add rule inet {table} lab_dnat iifname "wan0" {proto} dport {int(port)} '
            f"dnat ip to {target}:{dest_port}\n"
            f"add rule inet {table} lab_inbound ip daddr {target} {proto} dport {dest_port} accept\n",
        )

    def hairpin(self, port: int, *, proto: str = "tcp", to: str | None = None) -> None:
        """NAT loopback for a forwarded port: connections from the LAN to the router's own
        public address are sent to ``to`` (default: the host) and masqueraded, so the reply
        comes back through the router. Without it (the default, as on many home routers)
        such a connection reaches the router itself, where nothing listens."""
        if "router" not in self.ns or self.router_wan_ipv4 is None:
            raise LabSetupError(f"lab {self.topology} has no home router to loop back on")
        target = to or self.host_ipv4
        self._nft(
            "router",
            f'add rule inet router lab_dnat iifname "lan0" ip daddr {self.router_wan_ipv4} '
            f"{proto} dport {int(port)} dnat ip to {target}:{int(port)}\n"
            f'add rule inet router postrouting oifname "lan0" ip saddr {plan.HOME_LAN_NET} '
            f"ip daddr {target} {proto} dport {int(port)} ct status dnat masquerade\n",
        )

    def _ip_batch(self, role: str, lines: list[str]) -> None:
        run_checked(
            ["ip", "-n", self.ns[role], "-batch", "-"],
            input="".join(f"{line}\n" for line in lines),
            what=f"ip in {role}",
        )

    def _nft(self, role: str, ruleset: str) -> None:
        run_checked(["ip", "netns", "exec", self.ns[role], "nft", "-f", "-"], input=ruleset, what=f"nft in {role}")

    # ------------------------------------------------------------------ build
    def up(self) -> Lab:
        """Build everything and wait until it answers. On any failure, tears down and raises."""
        started = time.monotonic()
        with _live_lock:
            _live_labs.add(self)
        try:
            self._build()
        except BaseException:
            self.down()
            raise
        self._is_up = True
        self.timings["up_s"] = time.monotonic() - started
        return self

    def _build(self) -> None:
        mark = time.monotonic()

        def phase(name: str) -> None:
            nonlocal mark
            now = time.monotonic()
            self.timings[f"phase_{name}_s"] = now - mark
            mark = now

        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-lab-"))
        (self.workdir / "home").mkdir(mode=0o700)
        netdir = self.workdir / "net"
        netdir.mkdir()
        names = list(self.ns.values())
        create_namespaces(names)
        for name in names:
            write_resolv_conf(name, plan.RESOLVER)
        phase("netns")
        self._create_links()
        if self.opts.shaped:
            self._start_relay()
        if self.topology == "ds-lite":
            self._start_softwire()
        phase("links")
        cfgs = namespace_configs(self.opts, edge_ipv4=self._edge_ipv4 or "", cgnat_pool_ip=self._cgnat_pool_ip)
        self._apply_configs(cfgs, netdir)
        if self._relay is not None:
            self._wait_relay_ready()
        if self._softwire is not None:
            self._wait_ready(self._softwire, "softwire")
        phase("configure")
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            services = pool.submit(self._start_internet)
            if self.opts.runs_upnp:
                self._start_miniupnpd()
                phase("miniupnpd")
            if self.opts.carrier_pcp:
                self._start_carrier_pcp()
                phase("carrier-pcp")
            services.result()
        phase("services")
        self.write_config()

    def _create_links(self) -> None:
        veths, taps = [], []
        for link in links(self.opts):
            a_ns, b_ns = self.ns[link.a_role], self.ns[link.b_role]
            if link.shaped:
                taps.append((a_ns, link.a_if))
                taps.append((b_ns, link.b_if))
            else:
                veths.append(f"link add {link.a_if} netns {a_ns} type veth peer name {link.b_if} netns {b_ns}\n")
        # Run from inside the lab's inet namespace: nothing is ever created in the machine's own.
        run_checked(["ip", "-n", self.ns["inet"], "-batch", "-"], input="".join(veths), what="creating veth pairs")
        for ns, ifname in taps:
            run_checked(["ip", "-n", ns, "tuntap", "add", "dev", ifname, "mode", "tap"], what="creating tap")
        if self.topology == "ds-lite":
            for role in ("router", "isp"):
                run_checked(
                    ["ip", "-n", self.ns[role], "tuntap", "add", "dev", DSLITE_IF, "mode", "tun"],
                    what="creating the DS-Lite tunnel device",
                )

    def _apply_configs(self, cfgs: dict[str, NamespaceConfig], netdir: Path) -> None:
        procs: list[tuple[str, subprocess.Popen[str]]] = []
        for role, cfg in cfgs.items():
            script = ["set -e"]
            if self.opts.ipv6:
                # Before the links go up: no duplicate address detection, so link-local
                # addresses (and neighbour discovery) work at once instead of after ~1 s.
                for ifname in ["all", "default", *self._interfaces(role)]:
                    script.append(f"echo 0 > /proc/sys/net/ipv6/conf/{ifname}/accept_dad")
            for key, value in cfg.sysctls.items():
                script.append(f"echo {value} > /proc/sys/{key}")
            ip_file = netdir / f"{role}.ip"
            ip_file.write_text("".join(f"{line}\n" for line in cfg.ip_lines))
            script.append(f"ip -batch {ip_file}")
            if cfg.nft:
                nft_file = netdir / f"{role}.nft"
                nft_file.write_text(cfg.nft)
                script.append(f"nft -f {nft_file}")
            sh_file = netdir / f"{role}.sh"
            sh_file.write_text("\n".join(script) + "\n")
            procs.append(
                (
                    role,
                    subprocess.Popen(
                        ["ip", "netns", "exec", self.ns[role], "sh", str(sh_file)],
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                    ),
                )
            )
        errors = []
        for role, proc in procs:
            out, _ = proc.communicate(timeout=30)
            if proc.returncode != 0:
                errors.append(f"{role}: {out.strip()}")
        if errors:
            raise LabSetupError("configuring namespaces failed: " + "; ".join(errors))

    def _interfaces(self, role: str) -> list[str]:
        out = []
        for link in links(self.opts):
            if link.a_role == role:
                out.append(link.a_if)
            if link.b_role == role:
                out.append(link.b_if)
        return out

    def _start_relay(self) -> None:
        link = next(lk for lk in links(self.opts) if lk.shaped)
        a = f"{self.ns[link.a_role]}:{link.a_if}"
        b = f"{self.ns[link.b_role]}:{link.b_if}"
        # latency_ms is the round trip added (what ping shows): half of it each way.
        argv = [
            sys.executable,
            "-S",
            str(RELAY_SCRIPT),
            "--a",
            a,
            "--b",
            b,
            "--delay-ms",
            str(self.opts.latency_ms / 2),
            "--loss-pct",
            str(self.opts.loss_pct),
        ]
        with open(self.workdir / "relay.log", "w") as log:  # the relay keeps its own copy of the fd
            self._relay = subprocess.Popen(
                ["ip", "netns", "exec", self.ns[link.b_role], *argv], stdout=subprocess.PIPE, stderr=log, text=True
            )

    def _start_softwire(self) -> None:
        """DS-Lite's IPv4-in-IPv6 tunnel between the router (B4) and the ISP (AFTR): softwire.py."""
        argv = [
            sys.executable,
            "-S",
            str(SOFTWIRE_SCRIPT),
            "--b4",
            f"{self.ns['router']}:{DSLITE_IF}:{plan.ROUTER_V6_WAN}",
            "--aftr",
            f"{self.ns['isp']}:{DSLITE_IF}:{plan.CUSTOMER_V6_GW}",
        ]
        with open(self.workdir / "softwire.log", "w") as log:  # the child keeps its own copy of the fd
            self._softwire = subprocess.Popen(
                ["ip", "netns", "exec", self.ns["isp"], *argv], stdout=subprocess.PIPE, stderr=log, text=True
            )

    def _wait_ready(self, proc: subprocess.Popen[str], name: str) -> None:
        assert proc.stdout is not None
        import select

        ready, _, _ = select.select([proc.stdout], [], [], 15)
        line = proc.stdout.readline() if ready else ""
        if line.strip() != "ready":
            proc.kill()
            proc.wait(timeout=5)
            raise LabSetupError(f"{name} did not start: {(self.workdir / f'{name}.log').read_text()[-500:]}")

    def _wait_relay_ready(self) -> None:
        assert self._relay is not None and self._relay.stdout is not None
        import select

        ready, _, _ = select.select([self._relay.stdout], [], [], 15)
        line = self._relay.stdout.readline() if ready else ""  # "ready", or "" when the relay exited
        if line.strip() != "ready":
            self._relay.kill()
            self._relay.wait(timeout=5)
            raise LabSetupError(f"relay did not start: {(self.workdir / 'relay.log').read_text()[-500:]}")

    def _start_internet(self) -> None:
        try:
            from . import internet as internet_module
        except ImportError:  # lab-services' module not there yet: a lab without services
            self.internet = None
            return
        self.internet = internet_module.start_internet(self.ns["inet"], self.workdir / "internet", ipv6=self.opts.ipv6)

    def _miniupnpd_conf(self) -> str:
        lan = ipaddress.ip_network(plan.HOME_LAN_NET)
        claim = [f"ext_ip={self.opts.router_ext_ip}"] if self.opts.router_ext_ip else []
        return "\n".join(
            [
                f"ext_ifname={DSLITE_IF if self.topology == 'ds-lite' else 'wan0'}",
                *claim,
                "listening_ip=lan0",
                "enable_natpmp=yes",  # NAT-PMP and PCP both (miniupnpd 2.3.1)
                f"enable_upnp={'yes' if self.opts.upnp_igd else 'no'}",
                # IPv6 pinholes (IGDv2 WANIPv6FirewallControl and PCP MAP for IPv6) land in the
                # `miniupnpd` chain of the router's inet table, which its forward chain jumps to.
                *(["ipv6_disable=no"] if self.opts.ipv6 else []),
                "secure_mode=yes",
                "system_uptime=no",
                "notify_interval=60",
                "clean_ruleset_interval=600",
                f"uuid={uuid.uuid4()}",
                "friendly_name=ddns-wizard lab router",
                # What `diagnose` reads as the router's identity (upnp.router).
                f"manufacturer_name={LAB_ROUTER_MAKER}",
                f"model_name={LAB_ROUTER_MODEL}",
                f"presentation_url=http://{plan.HOME_GW}/",
                # Hook into the router's own ruleset (see _netconf.router_nft).
                "upnp_table_name=router",
                "upnp_nat_table_name=router",
                "upnp_forward_chain=miniupnpd",
                "upnp_nat_chain=prerouting_miniupnpd",
                "upnp_nat_postrouting_chain=postrouting_miniupnpd",
                f"allow 1024-65535 {lan} 1024-65535",
                f"allow 1-1023 {lan} 1-1023",
                "deny 0-65535 0.0.0.0/0 0-65535",
                "",
            ]
        )

    def _start_miniupnpd(self) -> None:
        conf = self.workdir / "miniupnpd.conf"
        conf.write_text(self._miniupnpd_conf())
        log_path = self.workdir / "miniupnpd.log"
        with open(log_path, "w") as log:
            self._miniupnpd = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.ns["router"],
                    MINIUPNPD,
                    "-d",
                    "-f",
                    str(conf),
                    "-P",
                    str(self.workdir / "miniupnpd.pid"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = log_path.read_text(errors="replace")
            if _MINIUPNPD_READY in text:
                return
            if self._miniupnpd.poll() is not None:
                break
            time.sleep(0.01)
        raise LabSetupError(f"miniupnpd did not come up: {log_path.read_text(errors='replace')[-800:]}")

    def _start_carrier_pcp(self) -> None:
        """A PCP server on the ISP's carrier-grade NAT (a second miniupnpd, UPnP off), towards the
        customers. Its rules go to chains of its own table that no hook uses: the lab tests what it
        answers, not forwarding through it."""
        self._nft(
            "isp",
            "table inet carrier {\n chain miniupnpd {\n }\n chain prerouting_miniupnpd {\n }\n"
            " chain postrouting_miniupnpd {\n }\n}\n",
        )
        conf = self.workdir / "carrier-pcp.conf"
        conf.write_text(
            "\n".join(
                [
                    "ext_ifname=up0",
                    "listening_ip=cust0",
                    "enable_natpmp=yes",
                    "enable_upnp=no",
                    "secure_mode=yes",
                    "system_uptime=no",
                    f"uuid={uuid.uuid4()}",
                    "upnp_table_name=carrier",
                    "upnp_nat_table_name=carrier",
                    "upnp_forward_chain=miniupnpd",
                    "upnp_nat_chain=prerouting_miniupnpd",
                    "upnp_nat_postrouting_chain=postrouting_miniupnpd",
                    f"allow 1024-65535 {plan.CGNAT_NET} 1024-65535",
                    "deny 0-65535 0.0.0.0/0 0-65535",
                    "",
                ]
            )
        )
        log_path = self.workdir / "carrier-pcp.log"
        with open(log_path, "w") as log:
            proc = self.popen(
                [MINIUPNPD, "-d", "-f", str(conf), "-P", str(self.workdir / "carrier-pcp.pid")],
                ns="isp",
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while _MINIUPNPD_READY not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise LabSetupError(
                    f"the carrier's PCP server did not come up: {log_path.read_text(errors='replace')[-800:]}"
                )
            time.sleep(0.01)

    @property
    def miniupnpd_log(self) -> str:
        path = self.workdir / "miniupnpd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ------------------------------------------------------------------ teardown
    def down(self) -> None:
        """Stop every process of the lab and delete its namespaces. Idempotent, never raises."""
        started = time.monotonic()
        if self.internet is not None:
            try:
                self.internet.stop()
            except Exception as exc:  # teardown must go on
                print(f"lab {self.prefix}: internet.stop() failed: {exc!r}", file=sys.stderr)
        for proc in [*self._procs, self._miniupnpd, self._relay, self._softwire]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in [*self._procs, self._miniupnpd, self._relay, self._softwire]:
            if proc is None:
                continue
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            for stream in (proc.stdout, proc.stderr, proc.stdin):
                if stream is not None:
                    stream.close()
        names = list(self.ns.values())
        kill_namespace_processes(names)
        delete_namespaces(names)
        if not self.keep_workdir and self.workdir.name.startswith(self.prefix):
            shutil.rmtree(self.workdir, ignore_errors=True)
        self._is_up = False
        with _live_lock:
            _live_labs.discard(self)
        self.timings["down_s"] = time.monotonic() - started

    def __enter__(self) -> Lab:
        return self if self._is_up else self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()


def fallback_endpoints() -> dict[str, Any]:
    """[endpoints] pointing at the plan's service addresses (used only without internet.py)."""
    return {
        "ip_echo": [f"https://{plan.ECHO1}/", f"https://{plan.ECHO2}/"],
        "ip_echo_v6": [f"https://[{plan.ECHO1_V6}]/"],
        "dns_echo": [f"opendns@{plan.DNS_ECHO}", f"cloudflare@{plan.DNS_ECHO}"],
        "stun": [f"{plan.STUN1}:{plan.STUN_PORT}", f"{plan.STUN2}:{plan.STUN_PORT}"],
        "port_check": [f"https://{plan.PROBE}/port/{{port}}"],
        "outbound_target": plan.ALLPORTS,
        "resolvers": [plan.RESOLVER, plan.RESOLVER2],
    }


def make_lab(
    topology: str,
    *,
    ipv6: bool = False,
    latency_ms: float = 0,
    loss_pct: float = 0.0,
    block_inbound: Iterable[str] = (),
    block_outbound: Iterable[str] = (),
    upnp: bool | None = None,
    router_ext_ip: str | None = None,
) -> Lab:
    """Build and start a lab (the caller must call ``down()``)."""
    opts = Options(
        topology,
        ipv6=ipv6,
        latency_ms=float(latency_ms),
        loss_pct=float(loss_pct),
        block_inbound=tuple(block_inbound),
        block_outbound=tuple(block_outbound),
        upnp=upnp,
        router_ext_ip=router_ext_ip,
    )
    return Lab(opts).up()


@atexit.register
def _down_all_live_labs() -> None:
    """Last resort (Ctrl-C in the middle of a run): no namespace outlives this process."""
    with _live_lock:
        labs = list(_live_labs)
    for lab in labs:
        lab.down()


if __name__ == "__main__":
    # `python -m tests.lab.topology home --shell` is `python -m tests.lab up home --shell`.
    from .__main__ import main

    argv = sys.argv[1:]
    sys.exit(main(["up", *argv] if argv and argv[0] in TOPOLOGIES else argv))
