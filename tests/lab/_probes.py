"""Small measurements made from inside lab namespaces with ordinary tools.

Each helper runs a tool (curl, upnpc, ping, dig) or a tiny Python one-liner in a
lab namespace and returns what it saw, so lab tests read like what a person
would type on the host. Nothing here imports the product: these are the
lab's own, independent observations.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass

from .topology import Lab

PY = sys.executable

_TCP_LISTEN = r"""
import socket, sys
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", int(sys.argv[1])))
s.listen(16)
print("listening", flush=True)
while True:
    c, a = s.accept()
    try:
        c.sendall(b"hello from the lab listener\n")
    finally:
        c.close()
"""

_TCP_CONNECT = r"""
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    s.settimeout(float(sys.argv[3]))
    try:
        data = s.recv(64).decode(errors="replace").strip()
    except socket.timeout:
        data = ""
    print("connected", data)
except socket.timeout:
    print("timeout")
except ConnectionRefusedError:
    print("refused")
except OSError as e:
    print("error", e.strerror)
"""

_STUN_BINDING = r"""
import os, socket, struct, sys
server, port = sys.argv[1], int(sys.argv[2])
txid = os.urandom(12)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)
for attempt in range(3):
    s.sendto(struct.pack("!HHI", 1, 0, 0x2112A442) + txid, (server, port))
    try:
        data, _ = s.recvfrom(2048)
    except socket.timeout:
        continue
    if data[8:20] != txid:
        continue
    pos = 20
    while pos + 4 <= len(data):
        kind, length = struct.unpack("!HH", data[pos:pos + 4])
        value = data[pos + 4:pos + 4 + length]
        if kind in (0x0020, 0x0001) and value[1] == 1:
            xport, raw = struct.unpack("!H", value[2:4])[0], value[4:8]
            if kind == 0x0020:
                xport ^= 0x2112
                raw = bytes(b ^ m for b, m in zip(raw, struct.pack("!I", 0x2112A442)))
            print(socket.inet_ntoa(raw), xport, s.getsockname()[1])
            sys.exit(0)
        pos += 4 + length + (-length % 4)
print("no-answer")
"""

_NATPMP_EXTERNAL = r"""
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
for attempt in range(4):
    s.sendto(b"\x00\x00", (sys.argv[1], 5351))
    try:
        data, _ = s.recvfrom(64)
    except socket.timeout:
        continue
    version, op, result = struct.unpack("!BBH", data[:4])
    print(result, socket.inet_ntoa(data[8:12]) if len(data) >= 12 else "")
    sys.exit(0)
print("no-answer")
"""


_UDP_RESPONDER = r"""
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
print("listening", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(b"LAB-REPLY " + data, peer)
"""


class Listener:
    """A TCP listener (v4+v6) in a lab namespace that greets whoever connects
    (``udp=True``: a UDP responder that answers every datagram)."""

    def __init__(self, lab: Lab, port: int, *, ns: str = "host", udp: bool = False) -> None:
        self.port = port
        self.proc = lab.popen(
            [PY, "-c", _UDP_RESPONDER if udp else _TCP_LISTEN, str(port)],
            ns=ns,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "listening":
            raise RuntimeError(
                f"listener on port {port} did not start: {self.proc.stderr.read() if self.proc.stderr else ''}"
            )

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=5)


def tcp_connect(lab: Lab, address: str, port: int, *, ns: str = "host", timeout: float = 2.0) -> str:
    """'connected <greeting>', 'timeout', 'refused' or 'error <reason>'."""
    out = lab.run([PY, "-c", _TCP_CONNECT, address, str(port), str(timeout)], ns=ns, timeout=timeout + 10)
    return out.stdout.strip() or f"error {out.stderr.strip()[-200:]}"


def stun_binding(lab: Lab, server: str, port: int, *, ns: str = "host") -> tuple[str, int, int] | None:
    """(mapped address, mapped port, local port) from a STUN Binding request, or None."""
    out = lab.run([PY, "-c", _STUN_BINDING, server, str(port)], ns=ns, timeout=15).stdout.split()
    if len(out) != 3:
        return None
    return out[0], int(out[1]), int(out[2])


def natpmp_external_address(lab: Lab, gateway: str, *, ns: str = "host") -> tuple[int, str] | None:
    """(result code, external address) from a NAT-PMP request, or None without an answer."""
    out = lab.run([PY, "-c", _NATPMP_EXTERNAL, gateway], ns=ns, timeout=15).stdout.split()
    if not out or out[0] == "no-answer":
        return None
    return int(out[0]), (out[1] if len(out) > 1 else "")


def curl(
    lab: Lab, url: str, *, ns: str = "host", max_time: float = 5.0, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    argv = ["curl", "-sS", "--max-time", str(max_time)]
    if lab.ca_path:
        argv += ["--cacert", str(lab.ca_path)]
    return lab.run([*argv, *extra, url], ns=ns, timeout=max_time + 10)


@dataclass(frozen=True)
class UpnpStatus:
    found: bool  # an IGD answered SSDP
    connected: bool  # upnpc judged it "valid" (connected, public external address)
    external_ip: str | None
    output: str


def upnp_status(lab: Lab, *, ns: str = "host") -> UpnpStatus:
    """What ``upnpc -s`` finds. upnpc stops at an IGD it judges "not connected" (one with a
    private or no external address); then ask that IGD directly (``-u URL``) for its address."""
    out = lab.run(["upnpc", "-s"], ns=ns, timeout=30)
    text = out.stdout + out.stderr
    desc = re.search(r"desc: (\S+)", text)
    connected = "Found valid IGD" in text
    if desc and not connected:
        again = lab.run(["upnpc", "-u", desc.group(1), "-s"], ns=ns, timeout=30)
        text += again.stdout + again.stderr
    m = re.search(r"ExternalIPAddress = (\S*)", text)
    return UpnpStatus(
        found=desc is not None, connected=connected, external_ip=(m.group(1) or None) if m else None, output=text
    )


def ping_rtts(
    lab: Lab, address: str, *, count: int = 5, interval: float = 0.2, ns: str = "host", wait_s: float = 3.0
) -> tuple[int, list[float]]:
    """(replies received, RTTs in ms) of ``count`` pings."""
    out = lab.run(
        ["ping", "-n", "-c", str(count), "-i", str(interval), "-W", str(wait_s), address],
        ns=ns,
        timeout=count * interval + wait_s + 10,
    )
    rtts = [float(m) for m in re.findall(r"time=([\d.]+) ms", out.stdout)]
    return len(rtts), rtts
