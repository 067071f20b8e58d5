"""Outside port probers: who connects in from the internet, and how to ask them politely.

Every ``[endpoints] port_check`` / ``port_check_v6`` entry is one prober:

- ``ddnsw+https://HOST[:PORT]`` — the project's own ``probe-server``
  (probeserver/server.py): ``/probe/tcp/N`` reads the listener's banner (so the
  answer proves it reached *this* machine), ``/probe/udp/N?token=T`` sends a UDP
  datagram and returns the reply.  The only prober that can test UDP.  Its token
  bucket (10 requests/s per client, burst 64: ``probeserver.wire``) is kept on this
  side too, so a check of many ports is spaced to it rather than meeting 429s.
- a URL containing ``{port}`` — an echoip instance such as ifconfig.co:
  ``GET /port/N`` → ``{"ip", "port", "reachable"}``; it dials back *the address the
  request came from* over the same family, 2 s dial timeout, TCP only
  (mpolden/echoip ``http/http.go`` newPortResponse + PortHandler,
  ``iputil/iputil.go`` LookupPort).  ifconfig.co asks automated clients for at most
  one request per minute and may answer 429 or drop requests beyond it (echoip
  ``html/index.html``, FAQ "Is automated use permitted?").
- ``portchecker+https://HOST`` — portchecker.io's API (dsgnr/portchecker.io,
  ``backend/api/app/routes/v2.py``): ``GET /api/me/N`` answers ``True`` or
  ``False`` as text after a 1 s TCP connect to the requester's address (taken from
  its proxy's ``do-connecting-ip``/``x-real-ip`` header, ``helpers/query.py``
  get_requester); IPv4 only — an IPv6 requester gets HTTP 400 "IPv6 is not
  currently supported" (``is_address_valid``).  It publishes no rate limit; the
  project runs on donations (its CHANGELOG), so we space our requests ourselves
  and ask it only when ifconfig.co cannot answer.

Families.  Every request is pinned to the family being tested (checks/http.py):
an echoip-style prober tests the address the request came *from*, so an "IPv4"
test sent over IPv6 would test the IPv6 address and report it as ours.  An answer
that came over, or names an address of, the other family is discarded.

Limits.  ``ProberPacer`` remembers, across runs (a small JSON file in the user
state directory), when each prober was last asked and when it refused (429) or
stayed silent; a prober is never asked again inside its window.  The question
then goes to the next prober that may be asked; when none may, the answer says
so with a code (``rate-limited``, ``prober-silent``) and when to try again —
never a verdict.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from checks.addresses import parse_ip
from probeserver import wire
from probeserver.wire import REACHED, TCP_RESULTS, UDP_RESULTS, probe_url

if TYPE_CHECKING:  # pragma: no cover
    import httpx

Protocol = Literal["tcp", "udp"]
ProberKind = Literal["ddnsw", "echoip", "portchecker"]
# Why a question got no answer (ProbeAnswer.code, and PortResult.reason for the verdict).
AnswerCode = Literal["rate-limited", "prober-silent", "no-udp-prober", "no-prober-answered"]


@dataclass(frozen=True)
class ProberPolicy:
    """How often a prober may be asked from one client, and how long its answer may take."""

    min_interval_s: float
    timeout_s: float
    why: str  # where the interval comes from, for the sentences that cite it


ECHOIP_POLICY = ProberPolicy(60.0, 8.0, "it allows one automated request a minute (ifconfig.co's published limit)")
PORTCHECKER_POLICY = ProberPolicy(3.0, 8.0, "it publishes no limit, so this tool spaces its requests 3 s apart")
DDNSW_POLICY = ProberPolicy(0.0, 10.0, "")
# The probe server's default bucket (probeserver/wire.py: 10/s, burst 64 per client); a little
# under both, so requests that arrive bunched up still find a token.
DDNSW_RATE_PER_S = wire.DEFAULT_RATE_PER_S * 0.95
DDNSW_BURST = wire.DEFAULT_BURST - 2.0
DDNSW_429_RETRIES = 3  # a 429 from our own probe server: asked again after its Retry-After ...
DDNSW_429_MAX_WAIT_S = 3.0  # ... when that is this short


@dataclass(frozen=True)
class Prober:
    """One ``[endpoints] port_check`` entry."""

    kind: ProberKind
    url: str  # ddnsw/portchecker: base URL https://HOST[:PORT]; echoip: template containing {port}
    label: str  # what evidence sentences call it

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.url.replace("{port}", "0")).hostname or ""

    @property
    def policy(self) -> ProberPolicy:
        return {"echoip": ECHOIP_POLICY, "portchecker": PORTCHECKER_POLICY}.get(self.kind, DDNSW_POLICY)

    def tests(self, protocol: str) -> bool:
        return protocol == "tcp" or self.kind == "ddnsw"


def parse_prober(entry: str) -> Prober | str:
    """A Prober, or an error sentence for an entry that is none of the forms."""
    text = entry.strip()
    prefixed: tuple[tuple[str, ProberKind], ...] = (("ddnsw+", "ddnsw"), ("portchecker+", "portchecker"))
    for prefix, kind in prefixed:
        if text.startswith(prefix):
            base = text[len(prefix) :].rstrip("/")
            parts = urllib.parse.urlsplit(base)
            if parts.scheme not in ("https", "http") or not parts.hostname or "{port}" in base:
                return f"port_check entry {entry!r}: expected {prefix}https://HOST[:PORT]"
            return Prober(kind, base, parts.netloc)
    if "{port}" in text:
        parts = urllib.parse.urlsplit(text.replace("{port}", "0"))
        if parts.scheme not in ("https", "http") or not parts.hostname:
            return f"port_check entry {entry!r}: not an http(s) URL"
        return Prober("echoip", text, parts.netloc)
    return (
        f"port_check entry {entry!r} is none of: an echoip URL containing {{port}}, "
        "ddnsw+https://HOST (the project's probe server), portchecker+https://HOST"
    )


def parse_probers(entries: Sequence[str]) -> tuple[tuple[Prober, ...], tuple[str, ...]]:
    probers: list[Prober] = []
    errors: list[str] = []
    for entry in entries:
        parsed = parse_prober(entry)
        if isinstance(parsed, str):
            errors.append(parsed)
        else:
            probers.append(parsed)
    return tuple(probers), tuple(errors)


@dataclass(frozen=True)
class ProbeAnswer:
    """What one outside prober said about one port.

    ``outcome``: ``reached`` (it connected / got a UDP reply / reachable true),
    ``not-reached`` (refused, timed out, reachable false), ``no-answer`` (the prober
    itself failed: network, HTTP error, garbage, rate limit, or it was not asked)."""

    prober: str
    kind: ProberKind
    port: int
    protocol: Protocol
    outcome: Literal["reached", "not-reached", "no-answer"]
    result: str | None = None  # the prober's word: connected/refused/timeout/replied/reachable/...
    banner: str | None = None
    observed_ip: str | None = None  # our public address as the prober saw it
    error: str | None = None
    ms: float = 0.0
    code: AnswerCode | None = None  # for no-answer: why (rate-limited, prober-silent, ...)
    retry_after_s: float | None = None  # for rate-limited / prober-silent: when asking again makes sense
    family: int = 4


def _snippet(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_probe_response(
    prober: Prober, port: int, protocol: Protocol, status: int, body: bytes, *, ms: float = 0.0, family: int = 4
) -> ProbeAnswer:
    """Turn a prober's HTTP answer into a ProbeAnswer (pure; garbage → no-answer)."""

    def no_answer(error: str, code: AnswerCode | None = None) -> ProbeAnswer:
        return ProbeAnswer(
            prober.label, prober.kind, port, protocol, "no-answer", error=error, ms=ms, code=code, family=family
        )

    if status == 429:
        return no_answer(f"{prober.label} refused: too many requests (HTTP 429)", "rate-limited")
    text = body.decode("utf-8", "replace")
    if status != 200:
        detail = ""
        try:
            data = json.loads(text)
            if isinstance(data, dict):
                said = data.get("error") if isinstance(data.get("error"), str) else data.get("detail")
                if isinstance(said, str):
                    detail = f": {_snippet(said)}"
        except ValueError:
            pass
        return no_answer(f"{prober.label} answered HTTP {status}{detail}")
    if prober.kind == "portchecker":
        word = text.strip()
        if word not in ("True", "False"):
            return no_answer(f"{prober.label} answered neither True nor False: {_snippet(word)!r}")
        reached = word == "True"
        return ProbeAnswer(
            prober.label,
            "portchecker",
            port,
            protocol,
            "reached" if reached else "not-reached",
            result="reachable" if reached else "unreachable",
            ms=ms,
            family=family,
        )
    try:
        data = json.loads(text)
    except ValueError:
        return no_answer(f"{prober.label} answered something that is not JSON: {_snippet(text)!r}")
    if not isinstance(data, dict):
        return no_answer(f"{prober.label} answered unexpected JSON")
    ip_raw = data.get("ip")
    # A zoned address (fe80::1%eth0) is no address to parse_ip, but it is a claim to
    # reject with its reason rather than to ignore.
    observed = ip_raw if isinstance(ip_raw, str) and (parse_ip(ip_raw) is not None or "%" in ip_raw) else None
    if observed is not None:
        from checks.probes.publicip import accept_answer

        kept, why = accept_answer(observed, family)
        if kept is None:
            # An echoip-style prober tested the address it names: another family's
            # address is another line (the bug of issue 11), a non-public one nothing
            # outside. Either way it is no answer about this family's public address.
            return no_answer(f"{prober.label} tested {observed}, not this line's public IPv{family} address ({why})")
        observed = kept
    got_port = data.get("port")
    if got_port is not None and (not isinstance(got_port, int) or got_port != port):
        return no_answer(f"{prober.label} answered about port {got_port!r}, not {port}")
    if prober.kind == "echoip":
        reachable = data.get("reachable")
        if not isinstance(reachable, bool):
            return no_answer(f'{prober.label} answered without a true/false "reachable"')
        return ProbeAnswer(
            prober.label,
            "echoip",
            port,
            protocol,
            "reached" if reachable else "not-reached",
            result="reachable" if reachable else "unreachable",
            observed_ip=observed,
            ms=ms,
            family=family,
        )
    result = data.get("result")
    words: tuple[str, ...] = TCP_RESULTS if protocol == "tcp" else UDP_RESULTS
    if not isinstance(result, str) or result not in words:
        return no_answer(f"{prober.label} answered an unknown result {result!r}")
    banner = data.get("banner")
    banner = banner[:512] if isinstance(banner, str) else None
    error = data.get("error") if isinstance(data.get("error"), str) else None
    return ProbeAnswer(
        prober.label,
        "ddnsw",
        port,
        protocol,
        "reached" if result in REACHED else "not-reached",
        result=result,
        banner=banner,
        observed_ip=observed,
        error=error,
        ms=ms,
        family=family,
    )


def prober_url(prober: Prober, port: int, protocol: Protocol, token: str) -> str:
    if prober.kind == "echoip":
        return prober.url.replace("{port}", str(port))
    if prober.kind == "portchecker":
        return f"{prober.url}/api/me/{port}"
    return probe_url(prober.url, port, protocol, token)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, min(3600.0, float(value)))
    except ValueError:
        return None


async def ask_prober(
    client: httpx.AsyncClient,
    prober: Prober,
    port: int,
    protocol: Protocol,
    *,
    token: str,
    timeout_s: float | None = None,
    family: int = 4,
) -> ProbeAnswer:
    """Ask one prober about one port, once, over ``family`` only (never raises for
    network trouble).  A 429 is reported (code ``rate-limited``), never retried here:
    retrying inside the prober's window is what gets a client blocked."""
    import httpx

    from checks.http import fetch_over

    timeout = timeout_s if timeout_s is not None else prober.policy.timeout_s
    if not prober.tests(protocol):
        return ProbeAnswer(
            prober.label,
            prober.kind,
            port,
            protocol,
            "no-answer",
            family=family,
            error=f"{prober.label} tests TCP only",
            code="no-udp-prober",
        )
    start = time.perf_counter()

    def no_answer(error: str, code: AnswerCode | None = None) -> ProbeAnswer:
        return ProbeAnswer(
            prober.label,
            prober.kind,
            port,
            protocol,
            "no-answer",
            error=error,
            code=code,
            ms=(time.perf_counter() - start) * 1000,
            family=family,
        )

    try:
        async with asyncio.timeout(timeout):
            response, body, used = await fetch_over(
                client, "GET", prober_url(prober, port, protocol, token), family, timeout_s=timeout, max_bytes=16384
            )
    except (TimeoutError, httpx.TimeoutException):
        return no_answer(f"{prober.label} did not answer within {timeout:g} s", "prober-silent")
    except httpx.HTTPError as exc:
        return no_answer(
            f"could not reach {prober.label} over IPv{family}: {_snippet(str(exc) or type(exc).__name__, 120)}"
        )
    if used is not None and used != family:
        return no_answer(f"{prober.label}'s answer came over IPv{used}, not IPv{family}: discarded")
    ms = (time.perf_counter() - start) * 1000
    answer = parse_probe_response(prober, port, protocol, response.status_code, body, ms=ms, family=family)
    if response.status_code == 429:
        answer = replace(answer, retry_after_s=_retry_after(response.headers.get("retry-after")))
    return answer


# --------------------------------------------------------------------------- pacing


def default_pacer_path() -> Path:
    from platformdirs import user_state_dir  # lazy: only a port check needs it

    return Path(user_state_dir("ddns-wizard")) / "probers.json"


@dataclass
class ProberPacer:
    """When each prober may be asked again, remembered across runs (``path``; None keeps
    it in memory).  Keyed by prober and family: an echoip server counts the IPv4 and
    the IPv6 address of a host as two clients."""

    path: Path | None = None
    clock: Callable[[], float] = time.time
    _state: dict[str, dict[str, Any]] = field(default_factory=dict)
    _loaded: bool = False
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # ddnsw: key -> (tokens, at)

    @classmethod
    def default(cls) -> ProberPacer:
        try:
            return cls(default_pacer_path())
        except Exception:  # no state directory: pace this run only
            return cls(None)

    @staticmethod
    def key(prober: Prober, family: int) -> str:
        return f"{prober.kind} {prober.url} v{family}"

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self.path is None:
            return
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and isinstance(data.get("probers"), dict):
            self._state = {k: v for k, v in data["probers"].items() if isinstance(v, dict)}

    def _save(self) -> None:
        if self.path is None:
            return
        now = self.clock()
        keep = {k: v for k, v in self._state.items() if float(v.get("next_at", 0)) > now - 3600}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"probers": keep}, indent=1), "utf-8")
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only home: pacing still holds within this run

    def wait_s(self, prober: Prober, family: int) -> tuple[float, dict[str, Any]]:
        """(seconds until the prober may be asked, what happened last)."""
        self._load()
        entry = self._state.get(self.key(prober, family), {})
        now = self.clock()
        wait = float(entry.get("next_at", 0)) - now
        # A clock that jumped back must not block a prober for longer than its window.
        ceiling = max(prober.policy.min_interval_s, float(entry.get("window_s", 0)))
        return max(0.0, min(wait, ceiling)), entry

    def reserve(self, prober: Prober, family: int) -> float:
        """Take the next slot: returns how long to wait before asking."""
        if prober.kind == "ddnsw":
            return self._bucket_wait(self.key(prober, family))
        wait, _ = self.wait_s(prober, family)
        now = self.clock()
        interval = prober.policy.min_interval_s
        if interval > 0:
            self._state[self.key(prober, family)] = {
                "asked_at": now + wait,
                "next_at": now + wait + interval,
                "window_s": interval,
                "last": "asked",
            }
            self._save()
        return wait

    def _bucket_wait(self, key: str) -> float:
        """The probe server's own token bucket, kept on this side (in memory, this run): a
        check of many ports spaces its requests to the refill rate instead of meeting 429s
        whose Retry-After is rounded up to whole seconds. A bucket the server still has
        half empty from an earlier run only costs a 429 and its Retry-After."""
        now = self.clock()
        tokens, at = self._buckets.get(key, (DDNSW_BURST, now))
        tokens = min(DDNSW_BURST, tokens + max(0.0, now - at) * DDNSW_RATE_PER_S) - 1
        self._buckets[key] = (tokens, now)
        return max(0.0, -tokens / DDNSW_RATE_PER_S)

    def refused(self, prober: Prober, family: int, seconds: float, what: str) -> None:
        """The prober refused (429) or stayed silent: leave it alone for ``seconds``."""
        self._load()
        now = self.clock()
        self._state[self.key(prober, family)] = {
            "asked_at": now,
            "next_at": now + seconds,
            "window_s": seconds,
            "last": what,
        }
        self._save()


def _not_asked_sentence(prober: Prober, wait: float, entry: dict[str, Any], now: float) -> str:
    ago = max(0.0, now - float(entry.get("asked_at", now)))
    last = entry.get("last", "asked")
    if last == "429":
        what = f"it refused this machine's request {ago:.0f} s ago with HTTP 429 (too many requests)"
    elif last == "silent":
        what = f"it did not answer this machine's request {ago:.0f} s ago (a prober over its limit drops requests)"
    else:
        what = f"{prober.policy.why}, and this machine asked it {ago:.0f} s ago"
    return f"{prober.label} was not asked: {what}; it can be asked again in {wait:.0f} s"


async def ask_probers(
    client: httpx.AsyncClient,
    probers: Sequence[Prober],
    port: int,
    protocol: Protocol,
    *,
    token: str,
    timeout_s: float | None = None,
    family: int = 4,
    pacer: ProberPacer | None = None,
    max_wait_s: float = 12.0,
) -> ProbeAnswer | None:
    """The first definite answer from the probers, in configuration order, respecting
    each prober's limits (``pacer``; a fresh in-memory one when None).

    A prober whose window is still open is waited for only up to ``max_wait_s``, else
    skipped; a 429 or silence closes its window (Retry-After, else its interval) and
    the next prober takes over.  UDP is asked only of the project's own probe servers
    (echoip and portchecker.io test TCP only).  None when no prober can test this
    protocol at all.  When nobody answered, the answer's ``code`` says why and
    ``retry_after_s`` when asking again makes sense."""
    usable = [p for p in probers if p.tests(protocol)]
    if not usable:
        return None
    pacer = pacer if pacer is not None else ProberPacer()
    failures: list[str] = []
    codes: list[str | None] = []
    waits: list[float] = []
    last: ProbeAnswer | None = None
    for prober in usable:
        wait, entry = pacer.wait_s(prober, family)
        if wait > max_wait_s:
            failures.append(_not_asked_sentence(prober, wait, entry, pacer.clock()))
            codes.append("rate-limited")
            waits.append(wait)
            continue
        delay = pacer.reserve(prober, family)
        if delay > 0:
            await asyncio.sleep(delay)
        answer = await ask_prober(client, prober, port, protocol, token=token, timeout_s=timeout_s, family=family)
        retries = 0
        # The project's probe server limits with a token bucket (probeserver/wire.py: 10/s, burst 64)
        # and says in Retry-After when the next token is there: a short wait beats giving the
        # port up as "rate-limited" (many ports at once can outrun the bucket).
        while (
            answer.code == "rate-limited"
            and prober.kind == "ddnsw"
            and retries < DDNSW_429_RETRIES
            and (answer.retry_after_s or 1.0) <= DDNSW_429_MAX_WAIT_S
        ):
            retries += 1
            await asyncio.sleep(answer.retry_after_s or 1.0)
            answer = await ask_prober(client, prober, port, protocol, token=token, timeout_s=timeout_s, family=family)
        if answer.outcome != "no-answer":
            return answer
        last = answer
        window = prober.policy.min_interval_s
        if answer.code == "rate-limited":
            window = max(window, answer.retry_after_s or 0.0) or 60.0
            pacer.refused(prober, family, window, "429")
            waits.append(window)
        elif answer.code == "prober-silent" and window > 0:
            pacer.refused(prober, family, window, "silent")
            waits.append(window)
        failures.append(answer.error or f"{prober.label} gave no answer")
        codes.append(answer.code)
    base = last or ProbeAnswer(usable[0].label, usable[0].kind, port, protocol, "no-answer", family=family)
    if all(c in ("rate-limited", "prober-silent") for c in codes):
        code: AnswerCode = "rate-limited" if "rate-limited" in codes else "prober-silent"
        retry = min(waits) if waits else None
    else:
        code, retry = "no-prober-answered", None
    return replace(
        base, error="; ".join(failures), code=code, retry_after_s=round(retry) if retry is not None else None
    )


__all__ = [
    "DDNSW_POLICY",
    "ECHOIP_POLICY",
    "PORTCHECKER_POLICY",
    "AnswerCode",
    "ProbeAnswer",
    "Prober",
    "ProberPacer",
    "ProberPolicy",
    "ask_prober",
    "ask_probers",
    "default_pacer_path",
    "parse_probe_response",
    "parse_prober",
    "parse_probers",
    "prober_url",
]
