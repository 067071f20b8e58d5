"""A user-space wire between two TAP devices, with delay and random loss.

The kernel here has no ``netem`` qdisc, so the lab emulates a slow or lossy ISP
link in user space: each end of the link is a TAP device (one in each lab
namespace) and this process copies Ethernet frames between them, holding every
frame back by a fixed delay and dropping a chosen fraction at random.

Run as a script (no imports from the project, so it starts fast)::

    ip netns exec NS_B python relay.py --a NS_A:IF_A --b NS_B:IF_B \
        --delay-ms 50 --loss-pct 5

It enters each namespace with ``setns(2)`` (Python 3.11 has no ``os.setns``),
attaches to the TAP device there (created beforehand with
``ip -n NS tuntap add IF mode tap``), prints ``ready`` once both are open and
then forwards until SIGTERM/SIGINT. ``--delay-ms`` applies to each direction.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import errno
import fcntl
import os
import random
import selectors
import signal
import struct
import sys
import time

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
MAX_QUEUED_FRAMES = 4096  # a full queue drops, like a router buffer would
MAX_FRAME = 65536

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


def open_tap(ifname: str) -> int:
    """Attach to an existing TAP device in the current namespace (no packet info header)."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    ifreq = struct.pack("16sH22x", ifname.encode(), IFF_TAP | IFF_NO_PI)
    try:
        fcntl.ioctl(fd, TUNSETIFF, ifreq)
    except OSError:
        os.close(fd)
        raise
    return fd


def is_control_frame(frame: bytes) -> bool:
    """ARP and IPv6 neighbour discovery: passed at once and never dropped.

    They belong to the Ethernet segment between the router and the modem, not to the
    slow or lossy part of the line (a satellite hop, a congested mobile cell) that the
    knobs model: on a real 800 ms line the first packet pays one round trip, not an
    extra one for address resolution. Losing them would also turn a few percent of
    loss into whole seconds of stalls while the kernel retries address resolution.
    """
    ethertype = frame[12:14]
    if ethertype == b"\x08\x06":
        return True
    # IPv6 (no extension headers) carrying ICMPv6 types 133-137 (RS, RA, NS, NA, redirect)
    return ethertype == b"\x86\xdd" and len(frame) > 54 and frame[20] == 58 and 133 <= frame[54] <= 137


class Direction:
    """Frames travelling from one tap to the other, released in order after the delay."""

    def __init__(self, src: int, dst: int, delay_s: float, loss: float, rng: random.Random) -> None:
        self.src, self.dst = src, dst
        self.delay_s, self.loss, self.rng = delay_s, loss, rng
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.passed = self.dropped = 0

    def read_all(self, now: float) -> None:
        for _ in range(256):  # bounded, so one busy direction cannot starve the other
            try:
                frame = os.read(self.src, MAX_FRAME)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EINTR):
                    return
                raise
            if self.loss and not is_control_frame(frame) and self.rng.random() < self.loss:
                self.dropped += 1
                continue
            if len(self.queue) >= MAX_QUEUED_FRAMES:
                self.dropped += 1
                continue
            if is_control_frame(frame):
                self._write(frame)
                continue
            self.queue.append((now + self.delay_s, frame))

    def release_due(self, now: float) -> None:
        while self.queue and self.queue[0][0] <= now:
            _, frame = self.queue.popleft()
            self._write(frame)

    def _write(self, frame: bytes) -> None:
        try:
            os.write(self.dst, frame)
            self.passed += 1
        except OSError:  # the other side is not ready (EAGAIN/EIO while down): the frame is lost
            self.dropped += 1

    def next_due(self) -> float | None:
        return self.queue[0][0] if self.queue else None


class _Stop(Exception):
    """Raised by the signal handler so a blocking select() ends at once."""


def run(a: tuple[str, str], b: tuple[str, str], delay_ms: float, loss_pct: float, seed: int | None) -> int:
    enter_netns(a[0])
    fd_a = open_tap(a[1])
    enter_netns(b[0])
    fd_b = open_tap(b[1])
    rng = random.Random(seed)
    delay_s = max(0.0, delay_ms) / 1000.0
    loss = min(max(loss_pct, 0.0), 100.0) / 100.0
    a_to_b = Direction(fd_a, fd_b, delay_s, loss, rng)
    b_to_a = Direction(fd_b, fd_a, delay_s, loss, rng)
    by_fd = {fd_a: a_to_b, fd_b: b_to_a}

    def stop(_signum: int, _frame: object) -> None:
        raise _Stop

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    sel = selectors.DefaultSelector()
    sel.register(fd_a, selectors.EVENT_READ)
    sel.register(fd_b, selectors.EVENT_READ)
    print("ready", flush=True)
    try:
        while True:
            dues = [d for d in (a_to_b.next_due(), b_to_a.next_due()) if d is not None]
            timeout = max(0.0, min(dues) - time.monotonic()) if dues else 1.0
            events = sel.select(timeout)
            now = time.monotonic()
            for key, _ in events:
                by_fd[key.fd].read_all(now)
            now = time.monotonic()
            a_to_b.release_due(now)
            b_to_a.release_due(now)
    except _Stop:
        pass
    print(
        f"a->b passed={a_to_b.passed} dropped={a_to_b.dropped} b->a passed={b_to_a.passed} dropped={b_to_a.dropped}",
        file=sys.stderr,
        flush=True,
    )
    return 0


def _endpoint(text: str) -> tuple[str, str]:
    ns, sep, ifname = text.partition(":")
    if not sep or not ns or not ifname:
        raise argparse.ArgumentTypeError(f"expected NAMESPACE:IFNAME, got {text!r}")
    return ns, ifname


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=_endpoint, required=True, help="NAMESPACE:TAP of one end")
    parser.add_argument("--b", type=_endpoint, required=True, help="NAMESPACE:TAP of the other end")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="delay added in each direction")
    parser.add_argument("--loss-pct", type=float, default=0.0, help="percentage of frames dropped")
    parser.add_argument("--seed", type=int, default=None, help="random seed for the loss decisions")
    args = parser.parse_args(argv)
    return run(args.a, args.b, args.delay_ms, args.loss_pct, args.seed)


if __name__ == "__main__":
    sys.exit(main())
