"""RFC 2136 DNS UPDATE with TSIG, for self-hosted BIND, Knot, PowerDNS, Technitium (dnspython).

The update replaces the hostname's A (and AAAA) RRset in one signed message
sent over TCP to the zone's primary (``server``: address or name, optional
``:port``).  Pre-flight sends a signed UPDATE that holds only a prerequisite
(the zone apex exists) and no change: the server checks the key and answers,
and nothing is modified.

Options: ``zone`` (default: the hostname minus its first label), ``key_name``,
``key_algorithm`` (default hmac-sha256), the base64 secret in ``tsig_secret``
(or ``key``), ``ttl`` (default 60).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from typing import Any

from checks.addresses import parse_ip, split_host_port
from checks.config import HostConfig
from checks.errors import AddressError
from checks.model import UpdateResult

from .base import (
    CredentialField,
    Policy,
    PreflightResult,
    ProviderSpec,
    check_fqdn,
    hostname_field,
    join_sent,
    keep_addresses,
)

DNS_TIMEOUT_S = 5.0
ALGORITHMS = ("hmac-sha256", "hmac-sha512", "hmac-sha384", "hmac-sha224", "hmac-sha1", "hmac-md5")


def check_secret(value: str) -> str | None:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return (
            "the TSIG secret must be base64, as in the 'secret' line of the key file (tsig-keygen / keymgr -t output)"
        )
    if len(raw) < 16:
        return "the TSIG secret is shorter than 16 bytes; generate a proper key (tsig-keygen -a hmac-sha256 NAME)"
    return None


def check_algorithm(value: str) -> str | None:
    return None if value.lower().rstrip(".") in ALGORITHMS else f"key_algorithm must be one of {', '.join(ALGORITHMS)}"


def check_key_name(value: str) -> str | None:
    name = value.strip().rstrip(".")
    if not name or any(ch.isspace() for ch in name) or len(name) > 253:
        return "key_name must be the key's name as the server knows it, e.g. ddns-key or ddns-key.example.org"
    return None


def check_server(value: str) -> str | None:
    try:
        server_of(value)
    except AddressError:
        return "server must be an address or name, optionally with :port (e.g. 192.0.2.53 or ns1.example.org:53)"
    return None


def server_of(value: str) -> tuple[str, int]:
    """The server's (address or host name, port; 53 by default). ``AddressError`` when unusable:
    a bad port is an error, never quietly port 53."""
    host, port = split_host_port(value, default_port=53, what="server")
    if parse_ip(host) is None and check_fqdn(host) is not None:
        raise AddressError(f"server {value!r}: not an IP address or a host name")
    return host, port


def _secret(host: HostConfig) -> str:
    return str(host.options.get("tsig_secret") or host.options.get("key") or host.token or host.password or "").strip()


def zone_of(host: HostConfig) -> str:
    zone = host.options.get("zone")
    if zone:
        return str(zone).lower().rstrip(".")
    return ".".join(host.hostname.split(".")[1:])


async def _server_address(host: HostConfig) -> tuple[str, int]:
    server, port = server_of(host.server or "")  # AddressError is a ValueError too
    try:
        ipaddress.ip_address(server)
        return server, port
    except ValueError:
        import dns.asyncresolver

        answer = await dns.asyncresolver.resolve(server, "A", lifetime=DNS_TIMEOUT_S)
        return str(answer[0]), port


def _message(host: HostConfig) -> Any:
    import dns.name
    import dns.tsigkeyring
    import dns.update

    key_name = str(host.options.get("key_name")).rstrip(".")
    algorithm = str(host.options.get("key_algorithm") or "hmac-sha256").lower().rstrip(".")
    keyring = dns.tsigkeyring.from_text({key_name: _secret(host)})
    return dns.update.UpdateMessage(
        zone_of(host), keyring=keyring, keyname=dns.name.from_text(key_name), keyalgorithm=dns.name.from_text(algorithm)
    )


async def _send(
    spec: ProviderSpec, host: HostConfig, message: Any, sent: str | None, action: str
) -> tuple[str | None, UpdateResult | None]:
    """Send; returns (rcode text, None) on an answer, or (None, error result)."""
    import dns.asyncquery
    import dns.exception
    import dns.message
    import dns.rcode
    import dns.tsig

    try:
        address, port = await _server_address(host)
    except Exception as exc:  # resolver errors are many types; all mean "cannot find the server"
        return None, spec.error(
            host,
            sent=sent,
            code="network",
            retry_code="network",
            message=f"cannot find the DNS server {host.server} ({type(exc).__name__}); will retry later.",
        )
    try:
        response = await dns.asyncquery.tcp(message, address, port=port, timeout=DNS_TIMEOUT_S)
    except (dns.tsig.PeerBadKey, dns.message.UnknownTSIGKey):
        return None, _bad_key(
            spec, host, sent, f"the server does not know key '{host.options.get('key_name')}'", "BADKEY"
        )
    except dns.tsig.PeerBadSignature:
        return None, _bad_key(
            spec,
            host,
            sent,
            "the server says the signature is wrong: the secret or the algorithm does not match its key",
            "BADSIG",
        )
    except dns.tsig.PeerBadTime:
        return None, spec.error(
            host,
            sent=sent,
            code="BADTIME",
            fatal=True,
            message=(
                "the server rejected the signature's time (BADTIME): this machine's clock "
                "differs from the server's by more than 5 minutes; fix the clock (NTP)."
            ),
        )
    except (dns.tsig.BadSignature, dns.tsig.PeerError) as exc:
        return None, _bad_key(spec, host, sent, f"TSIG check failed ({type(exc).__name__})", "TSIG")
    except (dns.exception.Timeout, TimeoutError):
        return None, spec.error(
            host,
            sent=sent,
            code="timeout",
            retry_code="network",
            message=f"the DNS server {host.server} did not answer in {DNS_TIMEOUT_S:.0f} s while "
            f"trying to {action}; will retry later.",
        )
    except OSError as exc:
        return None, spec.error(
            host,
            sent=sent,
            code="network",
            retry_code="network",
            message=f"cannot reach the DNS server {host.server} on TCP port {port} "
            f"({exc.strerror or type(exc).__name__}); will retry later.",
        )
    except dns.exception.DNSException as exc:
        return None, spec.error(
            host,
            sent=sent,
            code="unknown",
            retry_code="unknown",
            message=f"the DNS server {host.server} sent a reply that could not be used "
            f"({type(exc).__name__}); will retry later.",
        )
    return dns.rcode.to_text(response.rcode()), None


def _bad_key(spec: ProviderSpec, host: HostConfig, sent: str | None, what: str, code: str) -> UpdateResult:
    return spec.error(
        host,
        sent=sent,
        code=code,
        fatal=True,
        message=(
            f"the DNS server refused the TSIG key: {what}. Check key_name, key_algorithm and the "
            "secret against the server's key definition. Updates are stopped."
        ),
    )


def _rcode_result(spec: ProviderSpec, host: HostConfig, rcode: str, sent: str | None) -> UpdateResult:
    zone = zone_of(host)
    if rcode == "NOERROR":
        return spec.ok(
            host, sent=sent, result="updated", code="NOERROR", message=f"{host.hostname} now points to {sent}."
        )
    if rcode == "REFUSED":
        return spec.error(
            host,
            sent=sent,
            code=rcode,
            fatal=True,
            message=(
                f"the DNS server refused the update (REFUSED): the key is not allowed to update "
                f"{host.hostname} in {zone}, or updates are disabled. Check the server's update "
                "policy (BIND allow-update/update-policy, Knot acl). Updates are stopped."
            ),
        )
    if rcode == "NOTAUTH":
        return spec.error(
            host,
            sent=sent,
            code=rcode,
            fatal=True,
            message=(
                f"the DNS server is not authoritative for {zone} or rejected the key (NOTAUTH). "
                "Check the zone name, the server address (the zone's primary) and the key. "
                "Updates are stopped."
            ),
        )
    if rcode == "NOTZONE":
        return spec.error(
            host,
            sent=sent,
            code=rcode,
            fatal=True,
            message=f"{host.hostname} is not inside the zone {zone} (NOTZONE): set zone correctly.",
        )
    if rcode == "SERVFAIL":
        return spec.error(
            host,
            sent=sent,
            code=rcode,
            retry_code="SERVFAIL",
            message="the DNS server failed to apply the update (SERVFAIL); will retry later.",
        )
    return spec.error(
        host,
        sent=sent,
        code=rcode,
        fatal=True,
        message=f"the DNS server answered {rcode} to the update. Updates are stopped.",
    )


async def _served(host: HostConfig, name: str, rtype: str) -> list[str]:
    """The RRset the primary holds now (canonical addresses), asked directly over TCP."""
    import dns.asyncquery
    import dns.message
    import dns.rdatatype

    address, port = await _server_address(host)
    response = await dns.asyncquery.tcp(dns.message.make_query(name, rtype), address, port=port, timeout=DNS_TIMEOUT_S)
    wanted = dns.rdatatype.from_text(rtype)
    return [
        ipaddress.ip_address(r.to_text()).compressed
        for rrset in response.answer
        if rrset.rdtype == wanted
        for r in rrset
    ]


async def update(spec: ProviderSpec, host: HostConfig, ipv4: str | None, ipv6: str | None, client: Any) -> UpdateResult:
    """Replace the name's A/AAAA RRset with the one address: stale records beside it (a round
    robin left behind) go in the same signed message.  Addresses in ``keep_addresses`` stay:
    then only the stale records are deleted, one by one, and ours added."""
    message = _message(host)
    ttl = int(host.options.get("ttl", 60))
    name = host.hostname.rstrip(".") + "."
    keep = keep_addresses(host) or frozenset()
    sent = join_sent(ipv4, ipv6)
    for rtype, address in (("A", ipv4), ("AAAA", ipv6)):
        if not address:
            continue
        if not keep:
            message.replace(name, ttl, rtype, address)
            continue
        try:
            served = await _served(host, name, rtype)
        except Exception as exc:  # without the current set a delete could hit a kept address: retry later
            return spec.error(
                host,
                sent=sent,
                code="network",
                retry_code="network",
                message=(
                    f"could not read the current {rtype} records from {host.server} "
                    f"({type(exc).__name__}), needed to keep {', '.join(sorted(keep))}; "
                    "will retry later."
                ),
            )
        target = ipaddress.ip_address(address).compressed
        for stale in sorted(set(served) - keep - {target}):
            message.delete(name, rtype, stale)
        if target not in served:
            message.add(name, ttl, rtype, address)
    if not message.update:  # keep_addresses: everything was already as wanted
        return spec.ok(
            host,
            sent=None,
            result="unchanged",
            code="NOERROR",
            message=f"{host.hostname} already serves {sent} (and the kept addresses); nothing sent.",
        )
    rcode, failure = await _send(spec, host, message, sent, "update")
    if failure is not None:
        return failure
    assert rcode is not None
    return _rcode_result(spec, host, rcode, sent)


async def preflight(spec: ProviderSpec, host: HostConfig, client: Any) -> PreflightResult:
    message = _message(host)
    message.present(zone_of(host) + ".")  # prerequisite only: nothing is changed
    rcode, failure = await _send(spec, host, message, None, "check the key")
    if failure is not None:
        return PreflightResult(False, failure.message, code=failure.code)
    if rcode == "NOERROR":
        return PreflightResult(
            True,
            f"the server accepted the TSIG key for zone {zone_of(host)} (a signed update "
            "with no changes). Nothing was modified.",
            code=rcode,
        )
    result = _rcode_result(spec, host, rcode or "", None)
    return PreflightResult(False, result.message, code=rcode)


SPEC = ProviderSpec(
    name="rfc2136",
    title="RFC 2136 + TSIG",
    family="rfc2136",
    cost="own DNS server",
    url="https://datatracker.ietf.org/doc/html/rfc2136",
    default_server=None,
    needs="your own DNS server that is authoritative for the zone and accepts signed updates",
    signup_steps=(
        "On the DNS server, create a TSIG key: BIND `tsig-keygen -a hmac-sha256 ddns-key`, Knot "
        "`keymgr -t ddns-key hmac-sha256`; note the key name, algorithm and the base64 secret.",
        "Allow that key to update the hostname: BIND `update-policy { grant ddns-key name home.example.org. A AAAA; };`"
        ", Knot an `acl` with `action: update` and `key: ddns-key`, attached to the zone.",
        "Reload the server, then give ddns-wizard the server's address, the zone, the hostname, key name, "
        "algorithm and secret.",
    ),
    pitfalls=(
        "Send updates to the zone's primary server; secondaries answer NOTAUTH or REFUSED.",
        "TSIG signatures carry the time: a clock more than 5 minutes off is refused (BADTIME).",
        "Grant the key only the names it needs (update-policy 'name' or Knot update-owner), not the whole zone.",
    ),
    fields=(
        hostname_field("home.example.org"),
        CredentialField(
            "server", "DNS server", False, "address or name of the zone's primary, optionally :port", check_server
        ),
        CredentialField(
            "zone",
            "Zone",
            False,
            "the zone, e.g. example.org (default: the hostname minus its first label)",
            check_fqdn,
            required=False,
        ),
        CredentialField("key_name", "TSIG key name", False, "the key's name as the server knows it", check_key_name),
        CredentialField(
            "key_algorithm",
            "TSIG algorithm",
            False,
            "hmac-sha256 unless the key says otherwise",
            check_algorithm,
            required=False,
            default="hmac-sha256",
        ),
        CredentialField(
            "tsig_secret", "TSIG secret", True, "the base64 secret of the key", check_secret, aliases=("key",)
        ),
    ),
    supports_ipv6=True,
    policy=Policy(
        min_interval_s=30,
        fatal_codes=frozenset(),
        retry_after_s={"SERVFAIL": 300, "network": 120, "unknown": 600},
        default_retry_s=600,
    ),
    update_fn=update,
    preflight_fn=preflight,
    options={"user_server": True, "multi_record": True},
)
