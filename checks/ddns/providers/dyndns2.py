"""The dyndns2 protocol family: generic dyndns2 servers, No-IP, Dynu, Hurricane Electric.

``GET {server}/nic/update?hostname=H&myip=IP`` with HTTP Basic auth and a
descriptive User-Agent.  The reply body carries the answer (HTTP status is
often 200 even for errors): one line per hostname, ``good IP`` / ``nochg IP`` /
an error word.  Every word maps onto updated / unchanged / error with a
sentence saying what to do; fatal words stop the hostname (retrying them is
what gets accounts blocked), ``911``/``dnserr`` wait the provider's delay.

Dual stack differs per provider (``options["dual_stack"]``):
``combined`` sends ``myip=V4,V6`` (No-IP, generic), ``dynu`` sends
``myip=V4&myipv6=V6``, ``separate`` makes one call per family (Hurricane Electric).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from checks.config import HostConfig
from checks.model import UpdateResult, UpdateResultName

from .base import (
    REQUEST_TIMEOUT_S,
    CredentialField,
    Policy,
    PreflightResult,
    ProviderSpec,
    all_of,
    body_excerpt,
    check_fqdn,
    check_nonempty,
    hostname_field,
    http_status_result,
    join_sent,
    user_agent,
)

if TYPE_CHECKING:  # httpx is imported only by the code that sends requests (start-up time)
    import httpx

# Words after which retrying is pointless or harmful: the user must act.
AGENT_REFUSED = "good 127.0.0.1"  # the update was ignored: the agent is refused (help.dyn.com/return-codes)
# help.dyn.com/return-codes ("Any failed update attempt is fatal ... the client [must be] disabled until
# the situation is corrected"); !active and !yours from ddclient nic_dyndns2_update's %errors.
FATAL_WORDS = frozenset(
    {
        "badauth",
        "!donator",
        "notfqdn",
        "nohost",
        "numhost",
        "abuse",
        "badagent",
        "!yours",
        "!active",
        "badsys",
        "nofqdn",
        "config",
        "HTTP 401",
        "HTTP 403",
        "HTTP 404",
        AGENT_REFUSED,
    }
)
# Words that mean "trouble on the provider's side, try again later".
RETRY_WORDS = ("dnserr", "911", "interval", "servererror")
KNOWN_WORDS = ("badauth", "notfqdn", "nofqdn", "nohost", "numhost", "abuse", "badagent", "badsys", *RETRY_WORDS)
_WAIT_RE = re.compile(r"w(\d{1,6})([smh])", re.I)


def _word_message(spec: ProviderSpec, host: HostConfig, word: str, rest: str) -> str:
    hint = spec.options.get("credential_hint", "")
    panel = spec.options.get("panel", "the provider's web site")
    messages = {
        "badauth": (
            f"{spec.title} rejected the credentials (badauth). Check the username and password"
            f"{': ' + hint if hint else ''}. Updates for {host.hostname} are stopped until you fix "
            "the configuration."
        ),
        "!donator": (
            f"{spec.title} says this needs a paid account (!donator): an option was sent that "
            "free accounts cannot use. Updates are stopped."
        ),
        "notfqdn": (
            f"{spec.title} says {host.hostname} is not a fully-qualified hostname it knows (notfqdn). "
            "Check the spelling: the full name, e.g. myhome.ddns.net."
        ),
        "nofqdn": f"{spec.title} says no hostname was given (nofqdn). Check the hostname in the configuration.",
        "nohost": (
            f"{spec.title} says {host.hostname} does not exist in this account (nohost). Check the "
            f"spelling, or create the hostname on {panel} first, under the same account."
        ),
        "numhost": (
            f"{spec.title} says too many hosts were given in one update, or the name is a round robin "
            "that this protocol cannot update (numhost). Updates are stopped."
        ),
        "!active": (
            f"{spec.title} says {host.hostname} is in a custom domain that is not activated yet (!active). "
            f"Activate the domain on {panel}; updates are stopped until then."
        ),
        "servererror": (
            f"{spec.title} reports a server error (servererror). Nothing to fix here; ddns-wizard will retry later."
        ),
        AGENT_REFUSED: (
            f"{spec.title} answered 'good 127.0.0.1': it ignored the update because it refuses this "
            "client's User-Agent (dyndns2 convention), so nothing was changed. Please report it to the "
            "ddns-wizard maintainers; updates are stopped."
        ),
        "abuse": (
            f"{spec.title} has blocked updates for {host.hostname} (abuse). Stop: retrying makes it worse. "
            f"Log in to {panel} to unblock the hostname; ddns-wizard will not send again until you "
            "restart it after fixing this."
        ),
        "badagent": (
            f"{spec.title} rejected this client (badagent). Please report it to the ddns-wizard "
            "maintainers; updates are stopped."
        ),
        "!yours": (
            f"{spec.title} says {host.hostname} belongs to another account (!yours). Use the "
            "credentials of the account that owns the hostname."
        ),
        "badsys": f"{spec.title} rejected the request (badsys). Updates are stopped; please report it.",
        "dnserr": (
            f"{spec.title} has a DNS problem on its side (dnserr). Nothing to fix here; ddns-wizard will retry later."
        ),
        "911": (
            f"{spec.title} reports a server problem or maintenance (911). Nothing to fix here; "
            "ddns-wizard will retry later."
        ),
        "interval": (f"{spec.title} says updates are too frequent (interval). Waiting before trying again."),
    }
    return messages.get(word, "")


def parse_reply(
    spec: ProviderSpec, host: HostConfig, status: int, headers: Any, body: str, sent: str | None
) -> UpdateResult:
    """Map one dyndns2 reply (HTTP status + body) onto an UpdateResult. Never raises."""
    lines = [line.strip() for line in body.replace("\r", "\n").split("\n") if line.strip()]
    first = lines[0] if lines else ""
    parts = first.split(None, 1)
    word = parts[0] if parts else ""
    lower = word.lower()
    rest = parts[1] if len(parts) > 1 else ""
    if lower == "good" and rest.strip() == "127.0.0.1" and "127.0.0.1" not in (sent or "").split(","):
        # "good 127.0.0.1": the request was ignored because the agent is refused (help.dyn.com/return-codes).
        return spec.error(
            host, sent=sent, code=AGENT_REFUSED, fatal=True, message=_word_message(spec, host, AGENT_REFUSED, rest)
        )
    if lower == "good":
        shown = rest or sent or ""
        note = ""
        if rest and sent and not set(rest.replace(" ", ",").split(",")) & set(sent.split(",")):
            note = f" (we sent {sent}: the provider used another address)"
        return spec.ok(
            host, sent=sent, result="updated", code="good", message=f"{host.hostname} now points to {shown}{note}."
        )
    if lower == "nochg":
        return spec.ok(
            host,
            sent=sent,
            result="unchanged",
            code="nochg",
            message=(
                f"{spec.title} already had {rest or sent} (nochg). Fine once; repeated nochg "
                "replies get hosts blocked, so ddns-wizard only sends when DNS differs."
            ),
        )
    known = lower if lower in KNOWN_WORDS else word if word in ("!donator", "!yours", "!active") else None
    wait_match = _WAIT_RE.fullmatch(word)
    if known is None and wait_match:
        # Old DynDNS "wait" replies (w30m, w5h), still handled by ddclient's nic_noip_update.
        amount, unit = int(wait_match.group(1)), wait_match.group(2).lower()
        wait = min(amount * {"s": 1, "m": 60, "h": 3600}[unit], 24 * 3600)
        return spec.error(
            host,
            sent=sent,
            code=word,
            retry_after_s=max(wait, 60),
            message=f"{spec.title} asks to wait {amount}{unit} before the next update ({word}).",
        )
    if known is not None:
        message = _word_message(spec, host, known, rest)
        if known in FATAL_WORDS:
            return spec.error(host, sent=sent, code=known, fatal=True, message=message)
        wait = spec.policy.retry_for(known)
        return spec.error(
            host,
            sent=sent,
            code=known,
            retry_after_s=wait,
            message=f"{message} Next attempt in {wait // 60} min." if wait >= 60 else message,
        )
    # No known word: decide by HTTP status.
    response = _StatusOnly(status, headers)
    common = http_status_result(spec, host, response.status_code, response.headers, sent)
    if common is not None:
        return common
    if status == 401:
        return spec.error(
            host,
            sent=sent,
            code="badauth",
            fatal=True,
            message=_word_message(spec, host, "badauth", "") + " (HTTP 401)",
        )
    if status in (403, 404) or 400 <= status < 500:
        return spec.error(
            host,
            sent=sent,
            code=f"HTTP {status}",
            fatal=True,
            message=(
                f"{spec.title} answered HTTP {status} to the update request. Check the server "
                f"URL ({spec.server_for(host) or 'default'}) and the hostname; updates are "
                "stopped until the configuration changes."
            ),
        )
    excerpt = body_excerpt(body) if body.strip() else "an empty reply"
    return spec.error(
        host,
        sent=sent,
        code="unknown",
        retry_code="unknown",
        message=(
            f"{spec.title} gave a reply ddns-wizard does not understand "
            f"(HTTP {status}: {excerpt!s}); will retry later. Is the server URL right?"
        ),
    )


class _StatusOnly:
    def __init__(self, status: int, headers: Any) -> None:
        self.status_code = status
        self.headers = headers if headers is not None else {}


def _update_url(spec: ProviderSpec, host: HostConfig) -> str:
    server = spec.server_for(host)
    path = spec.options.get("path", "/nic/update")
    return server if server.endswith(path) else server + path


def _auth(spec: ProviderSpec, host: HostConfig) -> tuple[str, str]:
    username = host.username or (host.hostname if spec.options.get("username_is_hostname") else "")
    return (username or "", host.password or host.token or "")


async def _send(
    spec: ProviderSpec, host: HostConfig, params: dict[str, str], client: httpx.AsyncClient, sent: str | None
) -> UpdateResult:
    response = await client.get(
        _update_url(spec, host),
        params=params,
        auth=_auth(spec, host),
        headers={"User-Agent": user_agent(host.options.get("contact"))},
        timeout=REQUEST_TIMEOUT_S,
    )
    body = response.text[:4096]
    return parse_reply(spec, host, response.status_code, response.headers, body, sent)


async def update(
    spec: ProviderSpec, host: HostConfig, ipv4: str | None, ipv6: str | None, client: httpx.AsyncClient
) -> UpdateResult:
    mode = spec.options.get("dual_stack", "combined")
    if mode == "separate" and ipv4 and ipv6:
        first = await _send(spec, host, {"hostname": host.hostname, "myip": ipv4}, client, ipv4)
        if first.result == "error":
            return first
        second = await _send(spec, host, {"hostname": host.hostname, "myip": ipv6}, client, ipv6)
        if second.result == "error":
            return second
        both = join_sent(ipv4, ipv6)
        result: UpdateResultName = "updated" if "updated" in (first.result, second.result) else "unchanged"
        return spec.ok(
            host,
            sent=both,
            result=result,
            code=f"{first.code}/{second.code}",
            message=f"IPv4: {first.message} IPv6: {second.message}",
        )
    params = {"hostname": host.hostname}
    if mode == "dynu":
        zone, alias = dynu_names(host)
        params["hostname"] = zone
        if alias:
            params["alias"] = alias
        params["myip"] = ipv4 or "no"  # "no": do not auto-set IPv4 on an IPv6-only update
        if ipv6:
            params["myipv6"] = ipv6
    else:
        params["myip"] = join_sent(ipv4, ipv6) or ""
    return await _send(spec, host, params, client, join_sent(ipv4, ipv6))


async def update_batch(
    spec: ProviderSpec, hosts: Sequence[HostConfig], ipv4: str | None, ipv6: str | None, client: httpx.AsyncClient
) -> list[UpdateResult]:
    """Several hostnames in one request: ``hostname=h1,h2`` (at most 20; ``numhost`` beyond).

    help.dyn.com/return-codes: "hostname-specific return codes are given one per line, in the
    same order as the hostnames were specified. Return codes indicating a failure with the
    account or the system are given only once" -- so one line for several hosts applies to
    all of them (as ddclient's nic_dyndns2_update does), and a host without a line of its own
    is an unknown outcome, retried later.
    """
    first = hosts[0]
    sent = join_sent(ipv4, ipv6)
    params = {"hostname": ",".join(h.hostname for h in hosts), "myip": sent or ""}
    response = await client.get(
        _update_url(spec, first),
        params=params,
        auth=_auth(spec, first),
        headers={"User-Agent": user_agent(first.options.get("contact"))},
        timeout=REQUEST_TIMEOUT_S,
    )
    body = response.text[:4096]
    lines = [line.strip() for line in body.replace("\r", "\n").split("\n") if line.strip()]
    if len(lines) <= 1:
        return [parse_reply(spec, h, response.status_code, response.headers, body, sent) for h in hosts]
    out = []
    for i, h in enumerate(hosts):
        if i < len(lines):
            out.append(parse_reply(spec, h, response.status_code, response.headers, lines[i], sent))
        else:
            out.append(
                spec.error(
                    h,
                    sent=sent,
                    code="unknown",
                    retry_code="unknown",
                    message=(
                        f"{spec.title} answered {len(lines)} lines for {len(hosts)} hostnames "
                        "sent together, none for this one; will retry later."
                    ),
                )
            )
    return out


def dynu_names(host: HostConfig) -> tuple[str, str | None]:
    """(hostname, alias) for Dynu: a name below the registered Dynu name goes as
    ``hostname=<zone>&alias=<sub>`` (ddclient ``nic_dynu_update``, test ``t/protocol_dynu.pl``
    "zone: hostname+alias construction"); sending the full name gets ``nohost``.

    The zone is the ``zone`` option; else, under a free Dynu domain, the one label before
    it (``www.myhome.dynu.net`` → ``myhome.dynu.net`` + ``www``); else, for your own domain,
    the hostname minus its first label (``host.example.com`` → ``example.com`` + ``host``).
    """
    from checks.idn import IdnError, to_ascii

    def ascii_(name: str) -> str:
        try:
            return to_ascii(name)
        except IdnError:
            return name.strip().rstrip(".").lower()

    name = ascii_(host.hostname)
    configured = host.options.get("zone")
    if isinstance(configured, str) and configured.strip():
        zone = ascii_(configured)
    else:
        free = next((d for d in DYNU_DOMAINS if name.endswith("." + d)), None)
        labels = name.split(".")
        if free is not None:
            zone = ".".join(labels[-(free.count(".") + 2) :])
        elif len(labels) > 2:
            zone = ".".join(labels[1:])
        else:
            zone = name
    if name == zone or not name.endswith("." + zone):
        return name, None
    return zone, name[: -len(zone) - 1]


async def preflight(spec: ProviderSpec, host: HostConfig, client: httpx.AsyncClient) -> PreflightResult:
    # The dyndns2 protocol has no read-only call: any authenticated request is an update.
    return PreflightResult(
        ok=True,
        spent_update=True,
        message=(
            f"{spec.title} offers no way to test the credentials without updating: the first update is "
            "the test. ddns-wizard sends it only when DNS does not already serve your address, and "
            "stops at once on badauth or nohost instead of retrying."
        ),
    )


# --------------------------------------------------------------------------- specs

_POLICY_FATAL = FATAL_WORDS

NOIP_DOMAINS = (
    "ddns.net",
    "hopto.org",
    "zapto.org",
    "sytes.net",
    "no-ip.org",
    "no-ip.biz",
    "no-ip.info",
    "noip.me",
    "myftp.org",
    "myftp.biz",
    "myvnc.com",
    "servebeer.com",
    "serveblog.net",
    "servecounterstrike.com",
    "serveftp.com",
    "servegame.com",
    "servehalflife.com",
    "servehttp.com",
    "servehumour.com",
    "serveirc.com",
    "serveminecraft.net",
    "servemp3.com",
    "servepics.com",
    "servequake.com",
    "redirectme.net",
    "bounceme.net",
    "webhop.me",
    "ddns.me",
    "myddns.me",
    "hopto.me",
    "loginto.me",
    "gotdns.ch",
    "3utilities.com",
    "blogsyte.com",
    "casacam.net",
    "freedynamicdns.net",
    "freedynamicdns.org",
    "mymediapc.net",
    "mypsx.net",
    "mysecuritycamera.com",
    "mysecuritycamera.net",
    "mysecuritycamera.org",
    "onthewifi.com",
    "point2this.com",
    "read-books.org",
    "servesarcasm.com",
    "stufftoread.com",
    "ufcfan.org",
    "unusualperson.com",
    "workisboring.com",
    "viewdns.net",
    "damnserver.com",
    "ditchyourip.com",
    "dnsiskinky.com",
    "geekgalaxy.com",
    "net-freaks.com",
    "securitytactics.com",
    "servebbs.com",
    "servebbs.net",
    "servebbs.org",
    "myactivedirectory.com",
    "myftp.com",
)

DYNU_DOMAINS = (
    "dynu.net",
    "ddnsfree.com",
    "ddnsgeek.com",
    "giize.com",
    "gleeze.com",
    "kozow.com",
    "loseyourip.com",
    "ooguy.com",
    "theworkpc.com",
    "casacam.net",
    "accesscam.org",
    "camdvr.org",
    "freeddns.org",
    "mywire.org",
    "webredirect.org",
    "myddns.rocks",
    "blinklab.com",
    "dynuddns.net",
    "dynuddns.com",
    "dynuhosting.com",
    "mysynology.net",
    "ddns.net.au",
    "freeddns.net",
    "homesecuritymac.com",
    "homesecuritypc.com",
    "myvnc.com",
    "dynu.com",
    "wtfismyip.com",
    "x443.pw",
    "iswebhop.com",
    "giize.net",
)

GENERIC = ProviderSpec(
    name="dyndns2",
    title="dyndns2 server",
    family="dyndns2",
    cost="varies",
    url="(your provider's documentation)",
    default_server=None,
    needs="an account with any provider that speaks the dyndns2 protocol, and its update server URL",
    signup_steps=(
        "Find your provider's dyndns2 update server in its help pages (often called 'DynDNS compatible', "
        "'router update' or 'nic/update'), e.g. https://members.example.org.",
        "Create the hostname in the provider's control panel and note the exact full name.",
        "Note the username and password the provider wants for updates (many providers offer a separate "
        "update password or key: prefer it to your account password).",
        "Give ddns-wizard the server URL, hostname, username and password.",
    ),
    pitfalls=(
        "There is no way to test dyndns2 credentials without updating: the first update is the test.",
        "Repeated 'nochg' replies get hosts blocked as abuse: ddns-wizard only sends when DNS differs.",
        "Some servers return HTTP 200 for errors: ddns-wizard reads the reply words, not the status.",
    ),
    fields=(
        hostname_field("myhome.example.org"),
        CredentialField(
            "server",
            "Update server",
            False,
            "base URL of the provider's dyndns2 server, e.g. https://members.example.org (/nic/update is added)",
        ),
        CredentialField("username", "Username", False, "the update username", check_nonempty("the username")),
        CredentialField("password", "Password", True, "the update password or key", check_nonempty("the password")),
    ),
    supports_ipv6=True,
    policy=Policy(
        min_interval_s=300,
        fatal_codes=_POLICY_FATAL,
        retry_after_s={
            "911": 1800,
            "dnserr": 1800,
            "interval": 600,
            "http-5xx": 600,
            "http-429": 600,
            "network": 300,
            "unknown": 1800,
        },
        default_retry_s=1800,
    ),
    update_fn=update,
    preflight_fn=preflight,
    batch_fn=update_batch,
    options={"dual_stack": "combined", "user_server": True},
)

NOIP = ProviderSpec(
    name="noip",
    title="No-IP",
    family="dyndns2",
    cost="free (confirm every 30 days)",
    url="https://www.noip.com/sign-up",
    default_server="https://dynupdate.no-ip.com",
    domains=NOIP_DOMAINS,
    own_domain_allowed=True,
    needs="a free No-IP account and a hostname such as myhome.ddns.net",
    signup_steps=(
        "Open https://www.noip.com/sign-up, create a free account and confirm the e-mail.",
        "In the dashboard choose 'Dynamic DNS' → 'No-IP Hostnames' → 'Create Hostname'; pick a name and one "
        "of the free domains (e.g. ddns.net) and click 'Create Hostname'.",
        "Open 'Dynamic DNS' → 'DDNS Keys' (or the hostname's 'DDNS Key' option) and create a key for the "
        "hostname: copy the generated username and password shown once.",
        "Give ddns-wizard the full hostname and the DDNS Key username and password.",
    ),
    pitfalls=(
        "Free hostnames expire unless you confirm them every 30 days from No-IP's e-mail or dashboard; "
        "updates from a client do NOT count as confirmation.",
        "Prefer a DDNS Key (per-host username/password) to your account login, which is being phased out for updates.",
        "911 means maintenance on No-IP's side: wait at least 30 minutes before retrying (ddns-wizard does).",
        "No-IP can block a host for 'abuse' after repeated no-change updates.",
    ),
    fields=(
        hostname_field("myhome.ddns.net"),
        CredentialField(
            "username",
            "DDNS Key username",
            False,
            "the username of the DDNS Key (or your account e-mail)",
            check_nonempty("the username"),
        ),
        CredentialField(
            "password",
            "DDNS Key password",
            True,
            "the password shown when the key was created",
            check_nonempty("the password"),
        ),
    ),
    supports_ipv6=True,
    policy=Policy(
        min_interval_s=300,
        fatal_codes=_POLICY_FATAL,
        retry_after_s={
            "911": 1800,
            "dnserr": 1800,
            "http-5xx": 1800,
            "http-429": 1800,
            "network": 300,
            "unknown": 1800,
        },
        default_retry_s=1800,
    ),
    update_fn=update,
    preflight_fn=preflight,
    batch_fn=update_batch,
    options={
        "dual_stack": "combined",
        "panel": "https://my.noip.com",
        "credential_hint": "use the DDNS Key username/password from my.noip.com → DDNS Keys",
    },
)

DYNU = ProviderSpec(
    name="dynu",
    title="Dynu",
    family="dyndns2",
    cost="free",
    url="https://www.dynu.com/en-US/ControlPanel/CreateAccount",
    default_server="https://api.dynu.com",
    domains=DYNU_DOMAINS,
    own_domain_allowed=True,
    needs="a free Dynu account and a hostname such as myhome.freeddns.org",
    signup_steps=(
        "Open https://www.dynu.com, click 'Sign up' and confirm the e-mail.",
        "In the Control Panel choose 'DDNS Services' → '+ Add', pick 'Option 1' (a free Dynu domain) and "
        "a name, then 'Add'.",
        "Optionally set an IP update password under Control Panel → 'My Account' → 'Username/Password' "
        "('IP Update Password'): safer than the account password.",
        "Give ddns-wizard the full hostname, your Dynu username and that password.",
    ),
    pitfalls=(
        "911 means trouble on Dynu's side: wait 10 minutes before retrying (ddns-wizard does).",
        "The password may be the account password or the separate IP update password; prefer the latter.",
        "A name below your registered name (www.myhome.dynu.net, or host.example.com in your own domain) is "
        "updated as hostname=<domain>&alias=<sub>: set zone to the domain if it has more than two labels.",
    ),
    fields=(
        hostname_field("myhome.freeddns.org"),
        CredentialField("username", "Username", False, "your Dynu username", check_nonempty("the username")),
        CredentialField(
            "password",
            "IP update password",
            True,
            "the IP update password (or the account password)",
            check_nonempty("the password"),
        ),
        CredentialField(
            "zone",
            "Domain",
            False,
            "for a name under your own domain: the domain added to Dynu, e.g. example.com "
            "(default: the hostname minus its first label)",
            check_fqdn,
            required=False,
        ),
    ),
    supports_ipv6=True,
    policy=Policy(
        min_interval_s=300,
        fatal_codes=_POLICY_FATAL,
        retry_after_s={"911": 600, "dnserr": 600, "http-5xx": 600, "http-429": 600, "network": 300, "unknown": 1800},
        default_retry_s=1800,
    ),
    update_fn=update,
    preflight_fn=preflight,
    options={
        "dual_stack": "dynu",
        "panel": "https://www.dynu.com/en-US/ControlPanel",
        "credential_hint": "your Dynu username and the IP update password",
    },
)

HE = ProviderSpec(
    name="he",
    title="Hurricane Electric",
    family="dyndns2",
    cost="free, own domain",
    url="https://dns.he.net",
    default_server="https://dyn.dns.he.net",
    needs="your own domain with its DNS hosted at dns.he.net",
    signup_steps=(
        "Create a free account at https://dns.he.net and add your domain ('Add a new domain'); point the "
        "domain's NS records at ns1..ns5.he.net at your registrar.",
        "In the zone, click 'New A' (and 'New AAAA' for IPv6), enter the hostname, and tick "
        "'Enable entry for dynamic dns'.",
        "Click the refresh icon in the record's 'DDNS' column, 'Generate a key', and copy the key.",
        "Give ddns-wizard the full hostname and that key (the username is the hostname itself).",
    ),
    pitfalls=(
        "The key belongs to ONE record: each hostname (and each of A/AAAA if you want separate keys) has its "
        "own key, and the account password does not work for updates.",
        "Without 'Enable entry for dynamic dns' ticked the update is refused (badauth/nohost).",
        "More than 10 updates in 2 minutes gets an 'interval' reply: ddns-wizard then waits.",
    ),
    fields=(
        hostname_field("home.example.org"),
        CredentialField(
            "password",
            "DDNS key",
            True,
            "the key generated for this record on dns.he.net",
            all_of(check_nonempty("the key")),
        ),
    ),
    supports_ipv6=True,
    policy=Policy(
        min_interval_s=300,
        fatal_codes=_POLICY_FATAL,
        retry_after_s={
            "911": 1800,
            "dnserr": 1800,
            "interval": 300,
            "http-5xx": 600,
            "http-429": 600,
            "network": 300,
            "unknown": 1800,
        },
        default_retry_s=1800,
    ),
    update_fn=update,
    preflight_fn=preflight,
    options={
        "dual_stack": "separate",
        "username_is_hostname": True,
        "panel": "https://dns.he.net",
        "credential_hint": "use the per-record DDNS key generated on dns.he.net, not the account password",
    },
)

SPECS = (GENERIC, NOIP, DYNU, HE)
