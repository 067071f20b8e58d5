"""The one table of UPnP IGD error codes a user meets when mapping ports, in plain words.

Codes from the UPnP IGD WANIPConnection:2 service specification (section 2.5, errors
401-729); miniupnpc's Python module raises a bare ``Exception`` whose text is
``strupnperror(code)`` (miniupnpc/upnperrors.c), mapped back to the code here.
"""

from __future__ import annotations

# code -> what it means, worded for the person at the keyboard (the code is appended by the formatters).
UPNP_ERRORS: dict[int, str] = {
    402: "the router rejected the request's arguments",
    501: "the router could not perform the action (its WAN may be down or private)",
    606: "the router refused: action not authorized. Enable UPnP port mapping in the router's "
    "settings, or forward the port by hand",
    714: "no such mapping on the router",
    716: "the router does not accept a wildcard external port",
    718: "conflict: this external port is already mapped, perhaps to another device (routers in "
    "secure mode also refuse mappings that point at another LAN host)",
    724: "the router requires the external and internal ports to be the same",
    725: "the router accepts only permanent mappings (lease 0)",
    728: "the router's mapping table is full: remove unused mappings",
    729: "conflict with another mechanism: the port is used by the router itself or by a static "
    "forward / another protocol (NAT-PMP, PCP)",
}

# miniupnpc's exception texts (strupnperror) -> the UPnP code.
MINIUPNPC_TEXT_TO_CODE: dict[str, int] = {
    "Action not authorized": 606,
    "ConflictInMappingEntry": 718,
    "OnlyPermanentLeasesSupported": 725,
    "NoPortMapsAvailable": 728,
    "ConflictWithOtherMechanisms": 729,
    "Invalid Args": 402,
    "Action Failed": 501,
    "NoSuchEntryInArray": 714,
    "WildCardNotPermittedInExtPort": 716,
    "SamePortValuesRequired": 724,
    "Invalid Action": 401,
    "Argument Value Invalid": 600,
    "Argument Value Out of Range": 601,
}

# Faults that mean the router refused before creating anything (an add that failed this way
# left no mapping behind; any other failure may have created one).
REFUSED_NOT_CREATED = frozenset({401, 402, 600, 601, 606, 716, 718, 724, 725, 728, 729})


def code_of(exc: BaseException) -> int | None:
    """The UPnP code of an error: its ``code`` attribute, else read back from miniupnpc's text."""
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    text = str(exc).strip()
    if text in MINIUPNPC_TEXT_TO_CODE:
        return MINIUPNPC_TEXT_TO_CODE[text]
    if text[:3].isascii() and text[:3].isdigit():
        return int(text[:3])
    return None


def upnp_error_text(exc: BaseException) -> str:
    """A plain sentence for a failed UPnP action: the table's words and the code, else the error's own text."""
    code = code_of(exc)
    if code is not None and code in UPNP_ERRORS:
        return f"{UPNP_ERRORS[code]} (UPnP error {code})"
    text = str(exc) or type(exc).__name__
    if code and str(code) not in text:
        text += f" (UPnP error {code})"
    return text
