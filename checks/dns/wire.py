"""Reading DNS records from replies a stranger wrote, with dnspython.

dnspython keeps one process-wide table of rdata classes, filled on first use.  A reply
carrying an ``A`` (or ``AAAA``) record of class ANY, parsed before any Internet-class
``A`` record, makes that table answer "generic, no parser" for ``(ANY, A)``, and every
``IN A`` record parsed afterwards in the process falls back to it: a ``GenericRdata``
without an ``address`` (seen with dnspython 2.9.2, ``dns/rdata.py`` ``get_rdata_class``).
One hostile answer would blind a long-running ``watch`` to every A record.  Importing
this module pins the Internet-class address types first; :func:`address_of` reads an
address only from a record that really is one.
"""

from __future__ import annotations

from typing import Any

import dns.rdata
import dns.rdataclass
import dns.rdatatype

_PINNED = (
    dns.rdatatype.A,
    dns.rdatatype.AAAA,
    dns.rdatatype.CNAME,
    dns.rdatatype.NS,
    dns.rdatatype.SOA,
    dns.rdatatype.TXT,
)


def pin_rdata_classes() -> None:
    """Fill dnspython's table for the Internet-class types we read (idempotent)."""
    for rdtype in _PINNED:
        # dnspython 2.9 leaves get_rdata_class unannotated
        dns.rdata.get_rdata_class(dns.rdataclass.IN, rdtype)  # type: ignore[no-untyped-call]


def address_of(rdata: Any) -> str | None:
    """The address text of an A/AAAA rdata, or None when it is not a parsed address record."""
    value = getattr(rdata, "address", None)
    return value if isinstance(value, str) else None


pin_rdata_classes()
