"""Services that should not be exposed to the internet directly, by port.

A small pure table: ``risky_service(22, "tcp") -> "SSH"``.  Used by ``upnp list``
(mappings that expose such a service are marked) and by the diagnosis's
``exposed-service`` finding.  A port number says what usually listens there, not
what does: the wording built on it should say "usually".

Why these: they are what internet-wide scanners try first (remote shells and
desktops, file sharing, databases without authentication by default, camera and
NAS admin pages, router management).  The advice for all of them is the same:
reach them through a VPN (WireGuard, OpenVPN) or a tunnel rather than a port
forward; if one must be exposed, strong passwords or keys, updates, MFA and a
firewall that allows only known addresses.
"""

from __future__ import annotations

from typing import Literal

_Proto = Literal["tcp", "udp", "both"]

# (port, protocol the service uses, name).  "both": listed for TCP and UDP.
_TABLE: tuple[tuple[int, _Proto, str], ...] = (
    (21, "tcp", "FTP"),
    (22, "tcp", "SSH"),
    (23, "tcp", "Telnet"),
    (69, "udp", "TFTP"),
    (111, "both", "RPC portmapper"),
    (135, "tcp", "Windows RPC"),
    (137, "udp", "NetBIOS name service"),
    (138, "udp", "NetBIOS datagram"),
    (139, "tcp", "NetBIOS session (SMB)"),
    (161, "udp", "SNMP"),
    (445, "tcp", "SMB (Windows file sharing)"),
    (548, "tcp", "AFP (Apple file sharing)"),
    (554, "both", "RTSP (camera streams)"),
    (873, "tcp", "rsync"),
    (1433, "tcp", "Microsoft SQL Server"),
    (1900, "udp", "UPnP SSDP"),
    (2049, "both", "NFS"),
    (2375, "tcp", "Docker API (unencrypted)"),
    (3306, "tcp", "MySQL/MariaDB"),
    (3389, "both", "RDP (Remote Desktop)"),
    (5000, "tcp", "NAS admin page (Synology DSM)"),
    (5001, "tcp", "NAS admin page (Synology DSM, HTTPS)"),
    (5432, "tcp", "PostgreSQL"),
    (5900, "tcp", "VNC"),
    (5901, "tcp", "VNC"),
    (6379, "tcp", "Redis"),
    (8291, "tcp", "MikroTik Winbox"),
    (9100, "tcp", "printer (JetDirect)"),
    (9200, "tcp", "Elasticsearch"),
    (11211, "both", "memcached"),
    (27017, "tcp", "MongoDB"),
    (34567, "tcp", "DVR/camera admin (XMEye)"),
    (37777, "tcp", "DVR/camera admin (Dahua)"),
)

_BY_KEY: dict[tuple[int, str], str] = {}
for _port, _proto, _name in _TABLE:
    for _p in ("tcp", "udp") if _proto == "both" else (_proto,):
        _BY_KEY[(_port, _p)] = _name

RISKY_ADVICE = (
    "Do not expose it directly: reach it through a VPN (WireGuard, OpenVPN) or a tunnel. "
    "If it must stay exposed: strong passwords or keys, current updates, MFA, and a firewall "
    "rule that admits only known addresses."
)


def risky_service(port: int, protocol: str) -> str | None:
    """The risky service usually found on ``port``/``protocol`` ("tcp"/"udp", any case), or None."""
    return _BY_KEY.get((int(port), protocol.strip().lower()))
