"""One module per subcommand: ``add_arguments(parser)`` and ``run(args) -> exit code``.

Command modules import nothing heavy at module level (``--help`` imports them
all); engine and UI imports go inside ``run``.
"""

# (command name, module in wizard.commands, one-line help)
COMMANDS: list[tuple[str, str, str]] = [
    ("diagnose", "diagnose", "find addresses, NAT/CGNAT and router facts; changes nothing"),
    ("ports", "ports", "test inbound port forwarding from outside, and outbound ISP blocks"),
    ("upnp", "upnp", "list, add and remove the router's UPnP port mappings"),
    ("providers", "providers", "list supported DDNS providers and the credentials each needs"),
    ("update", "update", "update the configured hostnames when the public address changed"),
    ("verify", "verify", "check what authoritative servers and public resolvers answer; ping"),
    ("reach", "reach", "can someone outside open HOSTNAME:PORT, with a valid certificate? (end to end)"),
    ("watch", "watch", "keep the configured hostnames updated (long-running)"),
    ("status", "status", "what the updater did per hostname, and whether watch is running"),
    ("hosts", "hosts", "list or remove configured hostnames"),
    ("notify", "notify", "send a test notification to the configured [notify] URLs"),
    ("service", "service", "install, check or remove the watch as a systemd service"),
    ("probe-server", "probe_server", "run a self-hostable outside prober (IP echo, port checks)"),
]
