"""Port mapping on the router: the ``Mapper`` protocol (UPnP IGD, NAT-PMP), the ledger that
removes what a run created, and the one table of UPnP error codes."""
