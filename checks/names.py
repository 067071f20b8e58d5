"""Looking up one address family of a service's name: A for IPv4 facts, AAAA for IPv6.

Why not ``getaddrinfo``: the outside services (echoes, port probers, DNS echo and
STUN servers) are reached by dual-stack names, and a fact of one family must be
asked over that family only (checks/http.py).  The system resolver also runs in a
thread that cannot be cancelled: on a lossy line glibc waits 5 s before it asks
again, a probe's deadline cannot stop it, and the process cannot even exit until
the thread returns (``asyncio.run`` joins its executor).  This lookup is a coroutine:

1. an address literal is itself;
2. ``/etc/hosts`` (``HOSTS_PATH``) is read first, as the system resolver does;
3. else the nameservers of ``/etc/resolv.conf`` (dnspython reads it) are asked for
   the one record type, over UDP, with fresh copies of the question sent at
   ``RETRY_AT`` (a lost packet costs 0.3 s, not 5 s) until the deadline; the first
   answer wins, CNAME chains included.
Where no resolv.conf can be read (not a Unix), it falls back to the system
resolver restricted to the family.  Failures raise ``LookupFailed`` with a
sentence; nothing else is raised.
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

from checks.addresses import parse_ip

HOSTS_PATH = Path("/etc/hosts")
RETRY_AT = (0.0, 0.3, 0.8, 1.6, 3.0)  # send times (s) of the hedged questions


class LookupFailed(OSError):
    """No address of the family for the name (the sentence says why)."""


def _from_hosts(name: str, family: int, path: Path = HOSTS_PATH) -> list[str]:
    try:
        text = path.read_text("utf-8", "replace")
    except OSError:
        return []
    out: list[str] = []
    wanted = name.rstrip(".").lower()
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2 or wanted not in (f.lower() for f in fields[1:]):
            continue
        ip = parse_ip(fields[0].split("%", 1)[0])
        if ip is not None and ip.version == family:
            out.append(str(ip))
    return out


def _nameservers() -> list[str] | None:
    try:
        import dns.resolver

        # Plain addresses only: a Nameserver object (DoH, DoT) is not something to send UDP to.
        return [ns for ns in dns.resolver.Resolver(configure=True).nameservers if isinstance(ns, str)]
    except Exception:
        return None


async def lookup(
    name: str,
    family: int,
    *,
    timeout_s: float = 5.0,
    servers: list[tuple[str, int]] | None = None,
    hosts_path: Path | None = None,
) -> list[str]:
    """The addresses of ``family`` (4: A records, 6: AAAA) for ``name``; LookupFailed otherwise.

    ``servers`` ((address, port) pairs) and ``hosts_path`` replace resolv.conf's
    nameservers and /etc/hosts (tests)."""
    literal = parse_ip(name.strip("[]"))
    if literal is not None:
        if literal.version != family:
            raise LookupFailed(f"{name} is an IPv{literal.version} address, not IPv{family}")
        return [str(literal)]
    hosts = _from_hosts(name, family, hosts_path or HOSTS_PATH)
    if hosts:
        return hosts
    if servers is None:
        found = _nameservers()
        servers = [(server, 53) for server in found] if found else None
    if not servers:
        return await _system_lookup(name, family, timeout_s)
    import dns.asyncquery
    import dns.exception
    import dns.flags
    import dns.message
    import dns.rcode
    import dns.rdatatype

    rdtype = dns.rdatatype.AAAA if family == 6 else dns.rdatatype.A
    deadline = time.monotonic() + timeout_s

    async def ask(server: tuple[str, int], delay: float) -> dns.message.Message:
        await asyncio.sleep(delay)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise dns.exception.Timeout()  # type: ignore[no-untyped-call]  # dnspython leaves it unannotated
        query = dns.message.make_query(name, rdtype)
        query.flags |= dns.flags.RD
        return await dns.asyncquery.udp(query, server[0], port=server[1], timeout=remaining)

    tasks = [asyncio.ensure_future(ask(server, delay)) for delay in RETRY_AT if delay < timeout_s for server in servers]
    last_error: BaseException | None = None
    try:
        pending: set[asyncio.Future[dns.message.Message]] = set(tasks)
        while pending:
            done, pending = await asyncio.wait(
                pending, timeout=max(0.0, deadline - time.monotonic()), return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                break
            for task in done:
                if task.exception() is not None:
                    last_error = task.exception()
                    continue
                response = task.result()
                rcode = response.rcode()
                if rcode == dns.rcode.NXDOMAIN:
                    raise LookupFailed(f"{name} does not exist (NXDOMAIN)")
                if rcode != dns.rcode.NOERROR:
                    last_error = LookupFailed(f"the resolver answered {dns.rcode.to_text(rcode)} for {name}")
                    continue
                addresses = [rd.address for rrset in response.answer if rrset.rdtype == rdtype for rd in rrset]
                if not addresses:
                    kind = "AAAA" if family == 6 else "A"
                    raise LookupFailed(f"{name} has no IPv{family} address ({kind} record)")
                return addresses
    finally:
        for task in tasks:
            task.cancel()
    if isinstance(last_error, LookupFailed):
        raise last_error
    listing = ", ".join(address for address, _port in servers)
    raise LookupFailed(f"no answer from the resolver ({listing}) for {name} within {timeout_s:g} s")


async def _system_lookup(name: str, family: int, timeout_s: float) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s):
            infos = await loop.getaddrinfo(
                name, None, family=socket.AF_INET6 if family == 6 else socket.AF_INET, type=socket.SOCK_STREAM
            )
    except TimeoutError:
        raise LookupFailed(f"no answer for {name} within {timeout_s:g} s") from None
    except (OSError, UnicodeError) as exc:
        raise LookupFailed(f"cannot resolve {name} over IPv{family}: {getattr(exc, 'strerror', None) or exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
