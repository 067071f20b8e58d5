"""Internationalised domain names: one spelling for comparing, both for showing.

DNS, the providers' update URLs and the configuration use the ASCII form
(``xn--bcher-kva.example``); people type and read the Unicode form
(``bücher.example``).  Conversion follows IDNA2008 with UTS #46 mapping and
non-transitional processing (``ß`` stays ``ß``), as favonia/cloudflare-ddns does
(``internal/domain/domain.go``: ``idna.MapForLookup(), idna.Transitional(false)``).

Cloudflare's API answers zone names in Unicode (ddclient ``ddclient.in``,
``_cloudflare_zone_to_unicode``: "Cloudflare always returns zone names in
Unicode") but record names in Punycode (the Cloudflare SDK generated from its
OpenAPI: "Domain names are always represented in Punycode"), so names are
compared only after :func:`to_ascii`.
"""

from __future__ import annotations

__all__ = ["IdnError", "display", "is_idn", "same_name", "to_ascii", "to_unicode"]


class IdnError(ValueError):
    """A name that has no valid IDNA spelling (a sentence saying why)."""


def to_ascii(name: str) -> str:
    """The lower-case ASCII (Punycode) form of ``name``, without a trailing dot.

    Plain ASCII names are only lower-cased (underscores and other characters DNS
    allows but IDNA does not are left for the caller's own checks).  Raises
    :class:`IdnError` for a non-ASCII name IDNA cannot encode, or an ``xn--`` label
    that does not decode.
    """
    text = name.strip().rstrip(".")
    if text.isascii():
        lowered = text.lower()
        if "xn--" in lowered:
            for label in lowered.split("."):
                if label.startswith("xn--"):
                    _decode_label(label, name)
        return lowered
    import idna

    try:
        return idna.encode(text, uts46=True, transitional=False).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise IdnError(f"{name!r} is not a valid internationalised name ({exc})") from None


def _decode_label(label: str, whole: str) -> str:
    import idna

    try:
        return idna.decode(label)
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise IdnError(f"{whole!r}: the label {label!r} is not valid Punycode ({exc})") from None


def to_unicode(name: str) -> str:
    """The Unicode form for people; the input unchanged when it does not decode."""
    text = name.strip().rstrip(".")
    if "xn--" not in text.lower():
        return text.lower() if text.isascii() else text
    out = []
    for label in text.split("."):
        if label.lower().startswith("xn--"):
            try:
                out.append(_decode_label(label.lower(), name))
            except IdnError:
                return text
        else:
            out.append(label.lower())
    return ".".join(out)


def same_name(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are the same DNS name, whichever spelling each uses."""
    try:
        return to_ascii(a) == to_ascii(b)
    except IdnError:
        return a.strip().rstrip(".").lower() == b.strip().rstrip(".").lower()


def is_idn(name: str) -> bool:
    """True when the name has a Unicode spelling different from its ASCII one."""
    try:
        return to_unicode(to_ascii(name)) != to_ascii(name)
    except IdnError:
        return False


def display(name: str) -> str:
    """``xn--bcher-kva.example (bücher.example)`` for an IDN, the name alone otherwise."""
    try:
        ascii_form = to_ascii(name)
    except IdnError:
        return name
    unicode_form = to_unicode(ascii_form)
    return ascii_form if unicode_form == ascii_form else f"{ascii_form} ({unicode_form})"
