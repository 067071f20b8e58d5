"""The inbound port check: what is asked (spec), the listeners and outside probers, the verdict
rules, the run that ties them together, the router's mapping inventory and the IPv6 check."""
