"""Keeping secrets out of everything a person or a file can see.

``Redactor.text`` masks (1) every secret value from the configuration and (2)
secret-shaped pieces of URLs and headers even when the secret is unknown:
``token=``/``password=``/``key=`` query values, ``user:pass@`` userinfo, FreeDNS's
``/u/<token>/`` path, ``Authorization`` headers.  Use it on every string that may
be printed, logged or written to a report.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # query parameters that carry secrets
    (re.compile(r"(?i)([?&;](?:token|password|pass|pwd|key|secret|api_key|apikey|auth)=)[^&\s\"'#]+"), r"\1" + MASK),
    # user:password@ in URLs
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@/\s]+@"), r"\1" + MASK + "@"),
    # FreeDNS v2 sync URLs: https://sync.afraid.org/u/<token>/
    (re.compile(r"(?i)(/u/)[A-Za-z0-9_-]{8,}"), r"\1" + MASK),
    # Authorization headers
    (re.compile(r"(?i)(authorization:\s*(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + MASK),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{16,}"), r"\1" + MASK),
]


def _basic_credential(match: re.Match[str]) -> str:
    """Mask ``Basic <base64>`` outside a header line when the base64 decodes to ``user:password``."""
    try:
        decoded = base64.b64decode(match.group(2), validate=True)
    except ValueError:
        return match.group(0)
    return match.group(1) + MASK if b":" in decoded else match.group(0)


# an echoed Basic credential ("Authorization": "Basic dXNlcjpwYXNz"); English "basic words" stay
_BASIC_RE = re.compile(
    r"(?<![A-Za-z])(basic\s+)((?:[A-Za-z0-9+/]{4}){2,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?)(?![A-Za-z0-9+/=])",
    re.I,
)


@dataclass
class Redactor:
    """Masks known secrets in every form a server or a library may show them in.

    A provider that echoes what it received shows the secret URL-encoded (from a
    query string or a form), JSON- or HTML-escaped, or inside the base64 of an HTTP
    Basic ``Authorization`` header (``user:pass``) or of a cookie.  Base64 works on
    3-byte groups, so a secret embedded in a longer base64 string is encoded in one
    of three ways depending on its offset: rather than matching encoded forms, every
    run of base64 characters is decoded at each of its four alignments (standard and
    URL-safe alphabets, padding optional) and the whole run is masked when a secret
    shows in the decoded bytes.  The literal forms (plain, percent-encoded in either
    hex case or twice, JSON- and HTML-escaped) are masked where they stand.
    """

    secrets: list[str] = field(default_factory=list)
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (username, password) for Basic auth
    _compiled: tuple[tuple[Any, ...], tuple[re.Pattern[str] | None, tuple[bytes, ...]]] | None = field(
        default=None, repr=False, compare=False
    )
    # text -> masked text for the current secrets (emptied when they change): a round of 200
    # hosts redacts the same hostnames, provider names and sentences again and again.
    _memo: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_config(cls, config: Any) -> Redactor:
        r = cls(secrets=list(config.secret_values()))
        for host in getattr(config, "hosts", ()):
            r.add_basic(getattr(host, "username", None), getattr(host, "password", None))
        return r

    def add(self, values: Iterable[str | None]) -> None:
        for v in values:
            if v and v not in self.secrets:
                self.secrets.append(v)

    def add_basic(self, username: str | None, password: str | None) -> None:
        """Also mask the Basic ``Authorization`` value of this pair (and the password itself)."""
        if password:
            self.add([password])
            pair = (username or "", password)
            if pair not in self.pairs:
                self.pairs.append(pair)

    def _pattern(self) -> tuple[re.Pattern[str] | None, tuple[bytes, ...]]:
        key = (tuple(self.secrets), tuple(self.pairs))
        if self._compiled is None or self._compiled[0] != key:
            raws = tuple(
                sorted({s.encode("utf-8") for s in self.secrets if len(s.encode("utf-8")) >= _MIN_ENCODED}, key=len)
            )
            self._compiled = (key, (_compile(self.secrets, self.pairs), raws))
            self._memo.clear()
        return self._compiled[1]

    def text(self, value: str) -> str:
        pattern, raws = self._pattern()
        hit = self._memo.get(value)
        if hit is not None:
            return hit
        out = self._mask(value, pattern, raws)
        if len(self._memo) >= _MEMO_MAX:
            self._memo.clear()
        self._memo[value] = out
        return out

    def _mask(self, value: str, pattern: re.Pattern[str] | None, raws: tuple[bytes, ...]) -> str:
        out = value
        if pattern is not None:
            for _ in range(3):  # masking can join pieces into the secret again: until it is gone
                new = pattern.sub(MASK, out)
                if new == out:
                    break
                out = new
        if raws:
            out = _B64_RUN_RE.sub(lambda m: MASK if _holds_secret(m.group(0), raws) else m.group(0), out)
        for rx, repl in _PATTERNS:
            out = rx.sub(repl, out)
        return _BASIC_RE.sub(_basic_credential, out)

    def data(self, value: Any) -> Any:
        """Redact every string inside JSON-like data."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value


_MEMO_MAX = 4096  # remembered texts per Redactor
_MIN_SECRET = 3  # shorter values are not masked (they would mask half of every sentence)
_MIN_ENCODED = 4  # an encoded form shorter than this is not masked on its own
_B64_RUN_RE = re.compile(r"[A-Za-z0-9+/_-]{6,}={0,2}")


def _b64_decodings(run: str) -> Iterable[bytes]:
    """``run`` decoded from each of its four alignments, in both alphabets, padding restored."""
    for start in range(4):
        piece = run[start:].rstrip("=")
        rest = len(piece) % 4
        if rest == 1:
            piece = piece[:-1]
        elif rest:
            piece += "=" * (4 - rest)
        if not piece:
            continue
        for alphabet in (None, b"-_"):
            try:
                yield base64.b64decode(piece, altchars=alphabet, validate=True)
            except ValueError:
                pass


def _holds_secret(run: str, raws: Sequence[bytes]) -> bool:
    return any(raw in decoded for decoded in _b64_decodings(run) for raw in raws)


def secret_forms(secret: str) -> set[str]:
    """The literal forms of one secret a reply may carry (see :class:`Redactor`)."""
    literal = {secret}
    for quoted in (quote(secret, safe=""), quote(secret), quote_plus(secret, safe=""), quote_plus(secret)):
        literal.add(quoted)
        literal.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quoted))
        literal.add(quote(quoted, safe=""))  # encoded twice (a URL inside a URL)
    literal.add(json.dumps(secret)[1:-1])  # JSON: \" \\ \uXXXX
    literal.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    literal.add(json.dumps(secret)[1:-1].replace("/", "\\/"))  # JSON's optional \/
    literal.add(html.escape(secret, quote=True))
    literal.add(html.escape(secret, quote=False))
    return {f for f in literal if len(f) >= _MIN_ENCODED or f == secret}


def _compile(secrets: Sequence[str], pairs: Sequence[tuple[str, str]]) -> re.Pattern[str] | None:
    literal: set[str] = set()
    for secret in secrets:
        if len(secret) >= _MIN_SECRET:
            literal |= secret_forms(secret)
    for user, password in pairs:
        if len(password) >= _MIN_SECRET:
            literal |= secret_forms(f"{user}:{password}")
    if not literal:
        return None
    # Longest first: a secret containing another is masked whole.
    return re.compile("|".join(re.escape(f) for f in sorted(literal, key=len, reverse=True)))


# --- --redact: public addresses and hostnames, consistently -------------------------------

_IPV4_RE = re.compile(r"(?<!\d)(?<!\d\.)(?:\d{1,3}\.){3}\d{1,3}(?!\d)(?!\.\d)")
# Candidate IPv6 strings (validated with ipaddress before use).
_IPV6_RE = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])")


@dataclass
class AddressRedactor:
    """Masks public IP addresses and the user's hostnames with stable placeholders.

    The same value always becomes the same placeholder (203.0.113.N / 2001:db8::N,
    documentation ranges, and host-N.example), so a redacted report still reads:
    "the router's WAN 203.0.113.1 equals the external address 203.0.113.1".
    Private-range addresses are kept: they identify nobody and carry the diagnosis.
    """

    hostnames: list[str] = field(default_factory=list)
    _map: dict[str, str] = field(default_factory=dict)
    _n4: int = 0
    _n6: int = 0
    _nh: int = 0

    def _v4(self, addr: str) -> str:
        if addr not in self._map:
            self._n4 += 1
            n = self._n4
            self._map[addr] = f"203.0.113.{n}" if n < 255 else f"198.51.100.{(n - 254) % 255}"
        return self._map[addr]

    def _v6(self, addr: str) -> str:
        if addr not in self._map:
            self._n6 += 1
            self._map[addr] = f"2001:db8::{self._n6:x}"
        return self._map[addr]

    def _host(self, name: str) -> str:
        key = name.lower().rstrip(".")
        if key not in self._map:
            self._nh += 1
            self._map[key] = f"host-{self._nh}.example"
        return self._map[key]

    def text(self, value: str) -> str:
        from checks.addresses import is_public, parse_ip

        out = value
        for name in sorted(self.hostnames, key=len, reverse=True):
            if name:
                out = re.sub(re.escape(name.rstrip(".")), lambda m: self._host(m.group(0)), out, flags=re.I)

        def sub4(m: re.Match[str]) -> str:
            ip = parse_ip(m.group(0))
            return self._v4(str(ip)) if ip is not None and is_public(ip) else m.group(0)

        def sub6(m: re.Match[str]) -> str:
            ip = parse_ip(m.group(0))
            if ip is None or ip.version != 6:
                return m.group(0)
            return self._v6(str(ip)) if is_public(ip) else m.group(0)

        out = _IPV4_RE.sub(sub4, out)
        out = _IPV6_RE.sub(sub6, out)
        return out

    def data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value
