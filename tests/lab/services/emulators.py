"""Provider emulators: dyndns2 (No-IP style), DuckDNS and a Cloudflare v4 API subset.

Each accepted update is written into the lab's Knot over RFC 2136 (TSIG), so a later
DNS query really sees the new address; "nochg"/"NOCHANGE" compare with what Knot
serves.  Behaviour follows /work/shared/reference/providers.md; where the real
service is undocumented the choice made here is noted.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import re
import secrets
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .dnsupdate import Authority, lookup, replace_rrset, replace_rrsets
from .httpcommon import ServiceState, client_ip

# User-Agents that No-IP & co. answer with "badagent": empty or a library default.
GENERIC_AGENTS = (
    "python-requests",
    "python-httpx",
    "python-urllib",
    "curl/",
    "wget/",
    "go-http-client",
    "aiohttp",
    "okhttp",
    "java/",
    "libwww-perl",
)
# No-IP asks software clients for "Company NameOfProgram/OSVersion-ReleaseVersion
# maintainer-contact@example.com" and says clients without a certified agent "risk being
# rate-limited or blocked" (https://www.noip.com/integrate/request).  The model refuses an
# agent without a Program/Version token and a contact e-mail address -- e.g. ddns-wizard's
# old "ddns-wizard/0.1.0 https://github.com/..." -- with "badagent".
_PROGRAM_VERSION_RE = re.compile(r"[A-Za-z][\w.+-]*/[\w.+-]*\d[\w.+-]*")
_CONTACT_RE = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[A-Za-z]{2,}")
# Fault "agent-refused": the provider has blocked this client and ignores its updates, answering
# "good 127.0.0.1" for each host (help.dyn.com/return-codes: "good 127.0.0.1 ... warns user that
# request was ignored because of agent that does not follow our specifications").
AGENT_REFUSED_FAULT = "agent-refused"
# Knob (set like a fault) "any-agent": the model takes any User-Agent, as Dyn's own server does
# (its rules ask for an agent but the return code list applies badagent to none in particular);
# bench/run.py sets it so ddclient's and inadyn's agents (no contact e-mail) are served.
ANY_AGENT = "any-agent"


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _generic_agent(agent: str | None) -> bool:
    if not agent or not agent.strip():
        return True
    lowered = agent.strip().lower()
    return any(lowered.startswith(prefix) for prefix in GENERIC_AGENTS)


def _conforming_agent(agent: str | None) -> bool:
    """A No-IP-style agent: a Program/Version token and a maintainer e-mail (see above)."""
    if _generic_agent(agent):
        return False
    words = (agent or "").split()
    return any(_PROGRAM_VERSION_RE.fullmatch(w) for w in words) and any(_CONTACT_RE.fullmatch(w) for w in words)


def _basic_auth(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def _zone_of(fqdn: str, zones: list[str]) -> str | None:
    fqdn = fqdn.rstrip(".").lower()
    for zone in sorted(zones, key=len, reverse=True):
        if fqdn == zone or fqdn.endswith("." + zone):
            return zone
    return None


# --------------------------------------------------------------------------- dyndns2
def build_dyndns2(state: ServiceState, account: dict[str, Any], auth: Authority, zone: str, ttl: int) -> Starlette:
    """``GET /nic/update?hostname=h1[,h2]&myip=V4[,V6]`` with Basic auth, No-IP replies."""

    hostnames = {h.lower() for h in (*account["hostnames"], *account.get("bulk_hostnames", ()))}

    def refusal(host: str) -> str | None:
        """The reply for a name the account cannot update, else None."""
        if "." not in host:
            return "notfqdn"
        if host == account["abuse_hostname"]:
            return "abuse"
        if host == account["outage_hostname"]:
            return "911"
        if host == account["donator_hostname"]:
            return "!donator"
        if host not in hostnames:
            return "nohost"
        return None

    async def update_all(hosts: list[str], v4: str | None, v6: str | None) -> list[str]:
        """One reply line per name, in the order asked. The names of one grouped request are
        read concurrently and written in one RFC 2136 transaction: how fast the lab's provider
        writes is not what a benchmark of the clients should measure (200 names written one
        transaction each cost 0.88 s of a 1.66 s run: issue 18)."""
        sent = ",".join(a for a in (v4, v6) if a)
        wanted = [(rtype, value) for rtype, value in (("A", v4), ("AAAA", v6)) if value is not None]
        valid = sorted({h for h in hosts if refusal(h) is None})
        changed: set[str] = set()
        try:
            held = await asyncio.gather(*(lookup(auth.server, h, rtype) for h in valid for rtype, _ in wanted))
            changes = []
            for i, (host, (rtype, value)) in enumerate((h, w) for h in valid for w in wanted):
                if held[i] != [value]:
                    changes.append((host, rtype, [value]))
                    changed.add(host)
            if changes:
                await replace_rrsets(auth, zone, changes, ttl)
        except Exception:  # Knot down or refusing (UpdateRefused, timeouts): the provider's DNS error
            return [refusal(h) or "dnserr" for h in hosts]
        return [refusal(h) or (("good " if h in changed else "nochg ") + sent) for h in hosts]

    async def nic_update(request: Request) -> Response:
        if state.fault != ANY_AGENT and not _conforming_agent(request.headers.get("user-agent")):
            return PlainTextResponse("badagent\n")
        credentials = _basic_auth(request)
        if credentials != (account["username"], account["password"]):
            return PlainTextResponse(
                "badauth\n", status_code=401, headers={"WWW-Authenticate": 'Basic realm="lab dyndns2"'}
            )
        hosts = [h.strip().lower() for h in request.query_params.get("hostname", "").split(",") if h.strip()]
        if not hosts:
            return PlainTextResponse("notfqdn\n")
        if len(hosts) > 20:
            return PlainTextResponse("numhost\n")
        if state.fault == "911":
            return PlainTextResponse("\n".join("911" for _ in hosts) + "\n")
        if state.fault == AGENT_REFUSED_FAULT:  # ignored: nothing is written
            return PlainTextResponse("\n".join("good 127.0.0.1" for _ in hosts) + "\n")
        v4 = v6 = None
        for item in request.query_params.get("myip", "").split(","):
            addr = _ip(item)  # malformed myip is ignored (dyndns2: "the system's best guess")
            if isinstance(addr, ipaddress.IPv4Address):
                v4 = str(addr)
            elif isinstance(addr, ipaddress.IPv6Address):
                v6 = str(addr)
        if v4 is None and v6 is None:
            source = client_ip(request.scope)
            if ":" in source:
                v6 = source
            else:
                v4 = source
        lines = await update_all(hosts, v4, v6)
        return PlainTextResponse("\n".join(lines) + "\n")

    return Starlette(routes=[Route("/nic/update", nic_update, methods=["GET"])])


# --------------------------------------------------------------------------- DuckDNS
def build_duckdns(state: ServiceState, account: dict[str, Any], auth: Authority, zone: str, ttl: int) -> Starlette:
    """``GET /update?domains=a[,b]&token=T[&ip=][&ipv6=][&verbose=true][&clear=true]``."""

    domains = {d.lower() for d in account["domains"]}

    def ko() -> Response:
        return PlainTextResponse("KO")

    async def update(request: Request) -> Response:
        params = request.query_params
        if params.get("token", "") != account["token"]:
            return ko()
        names: list[str] = []
        for item in params.get("domains", "").split(","):
            item = item.strip().lower()
            if not item:
                continue
            if item.endswith("." + zone):
                item = item[: -len(zone) - 1]
            if item not in domains:
                return ko()
            names.append(item)
        if not names:
            return ko()
        verbose = params.get("verbose", "").lower() == "true"
        clear = params.get("clear", "").lower() == "true"
        v4 = v6 = None
        ip_text = params.get("ip", "")
        if ip_text:
            addr = _ip(ip_text)
            if addr is None:
                return ko()
            if isinstance(addr, ipaddress.IPv4Address):
                v4 = str(addr)
            else:
                v6 = str(addr)
        else:
            source = client_ip(request.scope)
            if ":" not in source:  # IPv6 is never auto-detected (providers.md)
                v4 = source
        ipv6_text = params.get("ipv6", "")
        if ipv6_text:
            addr6 = _ip(ipv6_text)
            if not isinstance(addr6, ipaddress.IPv6Address):
                return ko()
            v6 = str(addr6)
        changed = False
        try:
            for name in names:
                fqdn = f"{name}.{zone}"
                for rtype, value in (("A", v4), ("AAAA", v6)):
                    if clear:
                        if await lookup(auth.server, fqdn, rtype):
                            await replace_rrset(auth, zone, fqdn, rtype, [], ttl)
                            changed = True
                    elif value is not None and await lookup(auth.server, fqdn, rtype) != [value]:
                        await replace_rrset(auth, zone, fqdn, rtype, [value], ttl)
                        changed = True
        except Exception:
            return ko()
        if not verbose:
            return PlainTextResponse("OK")
        if clear:
            v4 = v6 = None
        return PlainTextResponse(f"OK\n{v4 or ''}\n{v6 or ''}\n{'UPDATED' if changed else 'NOCHANGE'}")

    return Starlette(routes=[Route("/update", update, methods=["GET"])])


# --------------------------------------------------------------------------- Cloudflare
PROXY_V4 = "11.9.0.1"  # what DNS serves for a proxied A record (Cloudflare's edge stand-in)
PROXY_V6 = "2a0c:b641:9::1"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


def _envelope(
    result: Any,
    *,
    status: int = 200,
    errors: list[dict[str, Any]] | None = None,
    messages: list[dict[str, Any]] | None = None,
    result_info: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"success": not errors, "errors": errors or [], "messages": messages or [], "result": result}
    if result_info is not None:
        body["result_info"] = result_info
    return JSONResponse(body, status_code=status)


def _cf_error(status: int, code: int, message: str) -> JSONResponse:
    return _envelope(None, status=status, errors=[{"code": code, "message": message}])


def _idna(name: str) -> str:
    """ASCII spelling of a name (the API keeps record names in Punycode; zones may be Unicode)."""
    import idna

    text = name.strip().rstrip(".").lower()
    if text.isascii():
        return text
    try:
        return idna.encode(text, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError:
        return text


class CloudflareState:
    """Zones, records and tokens of the Cloudflare emulator (in memory; DNS in Knot).

    Modelled after the real API:
    - zone names come back in Unicode for IDN zones, whichever spelling ``?name=`` used
      (ddclient ddclient.in ``_cloudflare_zone_to_unicode``: "Cloudflare always returns zone
      names in Unicode"), record names always in Punycode (the official SDK generated from the
      OpenAPI spec: "Domain names are always represented in Punycode");
    - a name may hold several A/AAAA records (a round robin), each with its own proxied flag;
      a proxied record is served from Cloudflare's edge, so DNS answers ``PROXY_V4``/``PROXY_V6``;
    - a token sees the zones in its scope with any zone permission: Zone -> DNS -> Edit alone is
      enough to look zones up by name (favonia/cloudflare-ddns needs only that permission and
      lists zones by name, internal/api/cloudflare_records.go); a token scoped to other zones sees
      none; an unknown token gets 403 code 9109 "Invalid access token" on /zones
      (favonia scripts/github-actions/cloudflare-auth-error-watch/cases.go, recorded live).
    Every zone's records live in the lab's Knot zone ``knot_zone`` (an extra zone, such as the
    IDN one, is a name below it: the lab needs no second delegation for it).
    """

    def __init__(self, account: dict[str, Any], auth: Authority | None = None) -> None:
        self.knot_zone: str = account["zone"]
        self.zone_name: str = account["zone"]
        self.zone_id: str = account["zone_id"]
        self.account_id: str = account["account_id"]
        self.auth = auth
        self.zones: dict[str, str] = {self.zone_id: self.zone_name}  # id -> name as the API shows it
        # token -> permissions (zone:read, dns:read, dns:edit), status, and zone scope (None: every zone)
        self.tokens: dict[str, dict[str, Any]] = {
            account["token"]: {
                "id": secrets.token_hex(16),
                "status": "active",
                "perms": {"zone:read", "dns:read", "dns:edit"},
                "zones": None,
            },
            account["readonly_token"]: {
                "id": secrets.token_hex(16),
                "status": "active",
                "perms": {"zone:read", "dns:read"},
                "zones": None,
            },
            account["dns_only_token"]: {
                "id": secrets.token_hex(16),
                "status": "active",
                "perms": {"dns:read", "dns:edit"},
                "zones": None,
            },
            account["disabled_token"]: {
                "id": secrets.token_hex(16),
                "status": "disabled",
                "perms": set(),
                "zones": None,
            },
        }
        self.records: dict[str, dict[str, Any]] = {}
        for record in account["records"]:
            self.records[record["id"]] = self.record_object(
                record["id"],
                record["type"],
                record["name"],
                record["content"],
                record.get("ttl", 1),
                record.get("proxied", False),
            )

    def record_object(
        self, rid: str, rtype: str, name: str, content: str, ttl: int, proxied: bool, zone_id: str | None = None
    ) -> dict[str, Any]:
        stamp = _now()
        zid = zone_id or self.zone_id
        return {
            "id": rid,
            "zone_id": zid,
            "zone_name": self.zones[zid],
            "name": _idna(name),
            "type": rtype,
            "content": content,
            "proxiable": rtype in ("A", "AAAA", "CNAME"),
            "proxied": proxied,
            "ttl": ttl,
            "locked": False,
            "meta": {},
            "comment": None,
            "tags": [],
            "created_on": stamp,
            "modified_on": stamp,
        }

    def dns_values(self, name: str, rtype: str) -> tuple[list[str], int]:
        """What Knot should serve for name/type given the records (proxied -> edge address)."""
        values, ttl = [], 300
        for record in self.records.values():
            if record["name"] == name and record["type"] == rtype:
                if record["proxied"]:
                    values.append(PROXY_V6 if rtype == "AAAA" else PROXY_V4)
                    ttl = 300
                else:
                    values.append(record["content"])
                    ttl = 300 if record["ttl"] == 1 else int(record["ttl"])
        return sorted(set(values)), ttl

    async def sync_dns(self, name: str, rtype: str) -> None:
        if self.auth is None or rtype not in ("A", "AAAA", "TXT", "CNAME"):
            return
        values, ttl = self.dns_values(name, rtype)
        await replace_rrset(self.auth, self.knot_zone, name, rtype, values, ttl)

    def zone_of(self, name: str) -> str | None:
        """The id of the most specific zone holding ``name`` (any spelling)."""
        ascii_name = _idna(name)
        best: tuple[int, str] | None = None
        for zid, zname in self.zones.items():
            z = _idna(zname)
            if (ascii_name == z or ascii_name.endswith("." + z)) and (best is None or len(z) > best[0]):
                best = (len(z), zid)
        return best[1] if best else None

    # -- the lab's control API (tests seed what the real dashboard would hold) -----------------
    def add_zone(self, name: str) -> str:
        """A further zone, e.g. an IDN one (``bücher.lab-zone.net``): kept in the spelling given."""
        if _zone_of(_idna(name), [self.knot_zone]) is None:
            raise ValueError(f"lab Cloudflare zones must lie below {self.knot_zone}")
        zid = secrets.token_hex(16)
        self.zones[zid] = name.strip().rstrip(".")
        return zid

    async def add_record(
        self, rtype: str, name: str, content: str, *, proxied: bool = False, ttl: int = 1, zone_id: str | None = None
    ) -> dict[str, Any]:
        zid = zone_id or self.zone_of(name) or self.zone_id
        record = self.record_object(secrets.token_hex(16), rtype.upper(), name, content, ttl, proxied, zid)
        self.records[record["id"]] = record
        await self.sync_dns(record["name"], record["type"])
        return record

    def add_token(self, token: str, perms: list[str], zones: list[str] | None, status: str = "active") -> None:
        self.tokens[token] = {
            "id": secrets.token_hex(16),
            "status": status,
            "perms": set(perms),
            "zones": None if zones is None else set(zones),
        }


def build_cloudflare(state: ServiceState, account: dict[str, Any], auth: Authority, ttl_default: int) -> Starlette:
    """The v4 API subset under /client/v4 the DDNS clients use (providers.md)."""

    cf = CloudflareState(account, auth)
    state.cloudflare = cf  # type: ignore[attr-defined]

    def token_of(request: Request, *, on_zones: bool = False) -> tuple[dict[str, Any] | None, Response | None]:
        header = request.headers.get("authorization")
        if header is None:
            return None, _cf_error(400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or not token.strip():
            return None, _envelope(
                None,
                status=400,
                errors=[
                    {
                        "code": 6003,
                        "message": "Invalid request headers",
                        "error_chain": [{"code": 6111, "message": "Invalid format for Authorization header"}],
                    }
                ],
            )
        info = cf.tokens.get(token.strip())
        if info is None:
            # /zones answers 403 / 9109 to a well-formed unknown token (favonia's recorded probe).
            return None, (
                _cf_error(403, 9109, "Invalid access token")
                if on_zones
                else _cf_error(401, 10000, "Authentication error")
            )
        return info, None

    def in_scope(info: dict[str, Any], zid: str) -> bool:
        return info["zones"] is None or zid in info["zones"]

    def need(request: Request, perm: str) -> Response | None:
        info, error = token_of(request)
        if error is not None:
            return error
        assert info is not None
        zid = request.path_params.get("zone_id")
        if info["status"] != "active" or perm not in info["perms"] or (zid in cf.zones and not in_scope(info, zid)):
            return _cf_error(403, 10000, "Authentication error")
        return None

    def zone_or_error(request: Request) -> Response | None:
        if request.path_params["zone_id"] not in cf.zones:
            return _cf_error(
                400,
                7003,
                f"Could not route to /zones/{request.path_params['zone_id'][:40]}"
                "/dns_records, perhaps your object identifier is invalid?",
            )
        return None

    async def sync_dns(name: str, rtype: str) -> None:
        await cf.sync_dns(name, rtype)

    def zone_object(zid: str) -> dict[str, Any]:
        name = cf.zones[zid]
        return {
            "id": zid,
            "name": name,
            "status": "active",
            "paused": False,
            "type": "full",
            "name_servers": [f"ns1.{cf.knot_zone}"],
            "account": {"id": cf.account_id, "name": "lab account"},
        }

    def page(items: list[Any]) -> dict[str, Any]:
        return {"page": 1, "per_page": 100, "count": len(items), "total_count": len(items), "total_pages": 1}

    async def verify(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        token = header.partition(" ")[2].strip() if header.startswith("Bearer ") else ""
        info = cf.tokens.get(token)
        if info is None:
            return _cf_error(401, 1000, "Invalid API Token")
        return _envelope(
            {"id": info["id"], "status": info["status"]},
            messages=[{"code": 10000, "message": "This API Token is valid and active", "type": None}],
        )

    async def list_zones(request: Request) -> Response:
        info, error = token_of(request, on_zones=True)
        if error is not None:
            return error
        assert info is not None
        if info["status"] != "active":
            return _cf_error(403, 10000, "Authentication error")
        # Any zone permission shows the zone (DNS:Edit alone is enough); other zones stay invisible.
        zones = [zone_object(zid) for zid in cf.zones if in_scope(info, zid) and info["perms"]]
        name = request.query_params.get("name")
        if name is not None:
            zones = [z for z in zones if _idna(z["name"]) == _idna(name)]
        return _envelope(zones, result_info=page(zones))

    async def get_zone(request: Request) -> Response:
        error = zone_or_error(request) or need(request, "dns:read")
        return error or _envelope(zone_object(request.path_params["zone_id"]))

    async def list_records(request: Request) -> Response:
        error = zone_or_error(request) or need(request, "dns:read")
        if error is not None:
            return error
        zid = request.path_params["zone_id"]
        records = [r for r in cf.records.values() if r["zone_id"] == zid]
        rtype = request.query_params.get("type")
        name = request.query_params.get("name") or request.query_params.get("name.exact")
        if rtype:
            records = [r for r in records if r["type"] == rtype.upper()]
        if name:
            records = [r for r in records if r["name"] == _idna(name)]
        return _envelope(records, result_info=page(records))

    async def read_body(request: Request) -> dict[str, Any] | Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return _cf_error(400, 9207, "Request body is invalid.")
        if not isinstance(body, dict):
            return _cf_error(400, 9207, "Request body is invalid.")
        return body

    def validated(record: dict[str, Any], zid: str) -> Response | None:
        rtype, content, ttl = record.get("type"), record.get("content"), record.get("ttl", 1)
        if rtype not in ("A", "AAAA", "TXT", "CNAME"):
            return _cf_error(400, 9004, "This record type is not supported by the lab emulator.")
        if not isinstance(content, str) or not content:
            return _cf_error(400, 9005, f"Content for {rtype} record is invalid.")
        addr = _ip(content)
        if rtype == "A" and not isinstance(addr, ipaddress.IPv4Address):
            return _cf_error(400, 9005, "Content for A record is invalid. Must be a valid IPv4 address")
        if rtype == "AAAA" and not isinstance(addr, ipaddress.IPv6Address):
            return _cf_error(400, 9005, "Content for AAAA record is invalid. Must be a valid IPv6 address")
        if not isinstance(ttl, int) or not (ttl == 1 or 30 <= ttl <= 86400):
            return _cf_error(400, 9021, "Invalid TTL. Must be between 30 and 86400 seconds, or 1 for Automatic.")
        if not isinstance(record.get("proxied", False), bool):
            return _cf_error(400, 9003, "Invalid 'proxied' value, must be a boolean")
        name = record.get("name")
        if not isinstance(name, str) or _zone_of(name, [_idna(cf.zones[zid])]) is None:
            return _cf_error(400, 9007, "Name is invalid or outside the zone.")
        return None

    def full_name(name: Any, zid: str) -> Any:
        if isinstance(name, str):
            zone = _idna(cf.zones[zid])
            name = _idna(name)
            if name == "@":
                return zone
            if _zone_of(name, [zone]) is None:
                return f"{name}.{zone}"
        return name

    async def write(record: dict[str, Any], previous: dict[str, Any] | None) -> Response | None:
        try:
            await sync_dns(record["name"], record["type"])
            if previous is not None and (previous["name"], previous["type"]) != (record["name"], record["type"]):
                await sync_dns(previous["name"], previous["type"])
        except Exception:
            return _cf_error(500, 1000, "Internal error while updating DNS")
        return None

    async def create_record(request: Request) -> Response:
        error = zone_or_error(request) or need(request, "dns:edit")
        if error is not None:
            return error
        zid = request.path_params["zone_id"]
        body = await read_body(request)
        if isinstance(body, Response):
            return body
        body["name"] = full_name(body.get("name"), zid)
        body["type"] = str(body.get("type", "")).upper()
        invalid = validated(body, zid)
        if invalid is not None:
            return invalid
        for existing in cf.records.values():
            if (existing["name"], existing["type"], existing["content"]) == (
                body["name"],
                body["type"],
                body["content"],
            ):
                return _cf_error(400, 81058, "An identical record already exists.")
        rid = secrets.token_hex(16)
        record = cf.record_object(
            rid, body["type"], body["name"], body["content"], body.get("ttl", 1), body.get("proxied", False), zid
        )
        cf.records[rid] = record
        failed = await write(record, None)
        return failed or _envelope(record)

    async def change_record(request: Request) -> Response:
        error = zone_or_error(request) or need(request, "dns:edit")
        if error is not None:
            return error
        zid = request.path_params["zone_id"]
        rid = request.path_params["record_id"]
        previous = cf.records.get(rid)
        if previous is None or previous["zone_id"] != zid:
            return _cf_error(404, 81044, "Record does not exist.")
        body = await read_body(request)
        if isinstance(body, Response):
            return body
        if request.method == "PATCH":
            merged = {k: previous[k] for k in ("type", "name", "content", "ttl", "proxied")} | body
        else:
            merged = {"ttl": 1, "proxied": False} | body
        merged["name"] = full_name(merged.get("name"), zid)
        merged["type"] = str(merged.get("type", "")).upper()
        invalid = validated(merged, zid)
        if invalid is not None:
            return invalid
        record = dict(previous) | {k: merged[k] for k in ("type", "name", "content", "ttl", "proxied")}
        record["modified_on"] = _now()
        cf.records[rid] = record
        failed = await write(record, previous)
        return failed or _envelope(record)

    async def delete_record(request: Request) -> Response:
        error = zone_or_error(request) or need(request, "dns:edit")
        if error is not None:
            return error
        record = cf.records.get(request.path_params["record_id"])
        if record is None or record["zone_id"] != request.path_params["zone_id"]:
            return _cf_error(404, 81044, "Record does not exist.")
        del cf.records[record["id"]]
        failed = await write(record, None)
        return failed or _envelope({"id": record["id"]})

    async def not_found(request: Request, exc: Exception) -> Response:
        return _cf_error(400, 7000, "No route for that URI")

    async def bad_method(request: Request, exc: Exception) -> Response:
        return _cf_error(405, 10405, "Method not allowed")

    async def verify_account(request: Request) -> Response:
        if request.path_params["account_id"] != cf.account_id:
            return _cf_error(403, 10000, "Authentication error")
        return await verify(request)

    base = "/client/v4"
    routes = [
        Route(f"{base}/user/tokens/verify", verify, methods=["GET"]),
        Route(f"{base}/accounts/{{account_id}}/tokens/verify", verify_account, methods=["GET"]),
        Route(f"{base}/zones", list_zones, methods=["GET"]),
        Route(f"{base}/zones/{{zone_id}}", get_zone, methods=["GET"]),
        Route(f"{base}/zones/{{zone_id}}/dns_records", list_records, methods=["GET"]),
        Route(f"{base}/zones/{{zone_id}}/dns_records", create_record, methods=["POST"]),
        Route(f"{base}/zones/{{zone_id}}/dns_records/{{record_id}}", change_record, methods=["PATCH", "PUT"]),
        Route(f"{base}/zones/{{zone_id}}/dns_records/{{record_id}}", delete_record, methods=["DELETE"]),
    ]
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: bad_method})
