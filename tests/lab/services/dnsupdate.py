"""RFC 2136 writes into the lab's Knot and reads back from it (dnspython)."""

from __future__ import annotations

from dataclasses import dataclass

import dns.asyncquery
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update


@dataclass(frozen=True)
class Authority:
    """Where and how to write: the primary's address and a TSIG key."""

    server: str
    key_name: str
    key_secret: str  # base64
    key_algorithm: str = "hmac-sha256"
    port: int = 53

    def keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        return dns.tsigkeyring.from_text({self.key_name: (self.key_algorithm, self.key_secret)})


class UpdateRefused(Exception):
    """The authoritative server did not accept the update (rcode in the message)."""


async def replace_rrset(
    auth: Authority, zone: str, fqdn: str, rtype: str, values: list[str], ttl: int, timeout: float = 3.0
) -> None:
    """Make ``fqdn rtype`` exactly ``values`` (empty list: delete the RRset)."""
    await replace_rrsets(auth, zone, [(fqdn, rtype, values)], ttl, timeout)


async def replace_rrsets(
    auth: Authority, zone: str, changes: list[tuple[str, str, list[str]]], ttl: int, timeout: float = 3.0
) -> None:
    """Make each ``(fqdn, rtype)`` exactly its values, all in one RFC 2136 transaction."""
    update = dns.update.UpdateMessage(
        zone, keyring=auth.keyring(), keyname=dns.name.from_text(auth.key_name), keyalgorithm=auth.key_algorithm
    )
    for fqdn, rtype, values in changes:
        name = dns.name.from_text(fqdn)
        update.delete(name, rtype)
        for value in values:
            update.add(name, ttl, rtype, value)
    response = await dns.asyncquery.tcp(update, auth.server, timeout=timeout, port=auth.port)
    if response.rcode() != dns.rcode.NOERROR:
        what = ", ".join(f"{fqdn} {rtype}" for fqdn, rtype, _ in changes)
        raise UpdateRefused(f"update of {what} refused: {dns.rcode.to_text(response.rcode())}")


async def lookup(server: str, fqdn: str, rtype: str, timeout: float = 2.0, port: int = 53) -> list[str]:
    """The values the authoritative server holds for ``fqdn rtype`` (empty when none)."""
    query = dns.message.make_query(fqdn, rtype)
    response = await dns.asyncquery.udp(query, server, timeout=timeout, port=port)
    wanted = dns.rdatatype.from_text(rtype)
    values: list[str] = []
    for rrset in response.answer:
        if rrset.rdtype == wanted and rrset.name == dns.name.from_text(fqdn):
            values.extend(rdata.to_text() for rdata in rrset)
    return values
