"""Probes: one look at the network each (local addresses, public address echoes, STUN, UPnP,
NAT-PMP / PCP, the router's identity, traceroute, ping, outbound ports). Every probe has a
deadline; failures are data."""
