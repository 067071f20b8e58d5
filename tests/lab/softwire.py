"""A DS-Lite softwire in user space: IPv4 inside IPv6 between the home router and the AFTR.

DS-Lite (RFC 6333) gives the customer an IPv6-only access line. The home router
(the "B4") carries IPv4 inside IPv6 -- plain IPv4-in-IPv6 encapsulation, next
header 4 (RFC 2473) -- to the ISP's AFTR, which unpacks it and runs the
carrier-grade NAT that every DS-Lite customer shares for IPv4. The tunnel's two
ends use 192.0.0.2 (B4) and 192.0.0.1 (AFTR) from 192.0.0.0/29, the range RFC 6333
reserves for it; the B4 does no NAT of its own (RFC 6333 section 5).

This kernel has no ``ip6tnl`` device, so this process is the tunnel: in each of the
two namespaces it holds a TUN device (the tunnel interface, created beforehand
with ``ip -n NS tuntap add dslite0 mode tun``) and a raw IPv6 socket for next
header 4. What the kernel routes into the TUN is sent to the other end as the
payload of an IPv6 packet with next header 4 -- on the wire exactly what a real B4
and AFTR exchange -- and what arrives from the other end's IPv6 address is written
back into the TUN. Run as a script (no project imports, so it starts fast)::

    python softwire.py --b4 NS_ROUTER:dslite0:2a0c:b641:100::20 \
                       --aftr NS_ISP:dslite0:2a0c:b641:100::1

It prints ``ready`` once both ends are open and forwards until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import os
import selectors
import signal
import socket
import struct
import sys

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IPPROTO_IPIP = 4  # the next header of IPv4-in-IPv6 (RFC 2473)
MAX_PACKET = 65536

_libc = ctypes.CDLL(None, use_errno=True)


def enter_netns(name: str) -> None:
    """Move this (single-threaded) process into the named network namespace."""
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({name}): {os.strerror(err)}")
    finally:
        os.close(fd)


def open_tun(ifname: str) -> int:
    """Attach to an existing TUN device in the current namespace (IP packets, no header)."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", ifname.encode(), IFF_TUN | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def is_ipv4(packet: bytes) -> bool:
    return len(packet) >= 20 and packet[0] >> 4 == 4


class End:
    """One end of the softwire: its TUN, its raw socket, and the other end's IPv6 address."""

    def __init__(self, ns: str, ifname: str, peer: str) -> None:
        enter_netns(ns)
        self.tun = open_tun(ifname)
        # A raw socket opened in this namespace stays in it after the process moves on.
        self.raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_IPIP)
        self.raw.setblocking(False)
        self.peer = socket.inet_pton(socket.AF_INET6, peer)
        self.peer_text = peer
        self.sent = self.received = 0

    def tun_to_peer(self) -> None:
        for _ in range(256):
            try:
                packet = os.read(self.tun, MAX_PACKET)
            except BlockingIOError:
                return
            if not is_ipv4(packet):
                continue  # the kernel's own IPv6 chatter on the tunnel device
            try:
                self.raw.sendto(packet, (self.peer_text, 0))
                self.sent += 1
            except OSError:
                pass  # no route yet / queue full: lost, as on a real line

    def peer_to_tun(self) -> None:
        for _ in range(256):
            try:
                packet, addr = self.raw.recvfrom(MAX_PACKET)
            except BlockingIOError:
                return
            # Only the configured other end is this tunnel's (an AFTR checks the softwire source).
            if socket.inet_pton(socket.AF_INET6, addr[0].split("%")[0]) != self.peer or not is_ipv4(packet):
                continue
            try:
                os.write(self.tun, packet)
                self.received += 1
            except OSError:
                pass


class _Stop(Exception):
    pass


def run(b4: tuple[str, str, str], aftr: tuple[str, str, str]) -> int:
    # Each end sends to the other's IPv6 address.
    b4_end = End(b4[0], b4[1], peer=aftr[2])
    aftr_end = End(aftr[0], aftr[1], peer=b4[2])

    def stop(_signum: int, _frame: object) -> None:
        raise _Stop

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sel = selectors.DefaultSelector()
    for end in (b4_end, aftr_end):
        sel.register(end.tun, selectors.EVENT_READ, (end, "tun"))
        sel.register(end.raw, selectors.EVENT_READ, (end, "raw"))
    print("ready", flush=True)
    try:
        while True:
            for key, _ in sel.select(1.0):
                end, what = key.data
                end.tun_to_peer() if what == "tun" else end.peer_to_tun()
    except _Stop:
        pass
    print(
        f"b4 sent={b4_end.sent} received={b4_end.received} aftr sent={aftr_end.sent} received={aftr_end.received}",
        file=sys.stderr,
        flush=True,
    )
    return 0


def _end(text: str) -> tuple[str, str, str]:
    parts = text.split(":", 2)
    if len(parts) != 3 or not all(parts):
        raise argparse.ArgumentTypeError(f"expected NAMESPACE:TUN:IPV6, got {text!r}")
    return parts[0], parts[1], parts[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--b4", type=_end, required=True, help="NAMESPACE:TUN:IPV6 of the home router's end")
    parser.add_argument("--aftr", type=_end, required=True, help="NAMESPACE:TUN:IPV6 of the ISP's AFTR end")
    args = parser.parse_args(argv)
    return run(args.b4, args.aftr)


if __name__ == "__main__":
    sys.exit(main())
