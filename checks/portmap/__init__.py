"""Port mapping on the router: the ``Mapper`` protocol (UPnP IGD, NAT-PMP; PCP in ``pcpmapper``),
the ledger that removes what a run created, and the one table of UPnP error codes; the PCP client
(``pcp``, RFC 6887), IGDv2 IPv6 pinholes (``pinhole``) and the lasting forwards this tool keeps
(``lasting``: forwards.json, renewed by ``watch``)."""
