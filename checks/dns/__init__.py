"""DNS: what the world sees for a name (verify) and the wire helpers shared with the probes."""
