"""Configuration: the TOML file of DESIGN.md, loaded, validated and saved safely.

Where the file lives: ``--config FILE``, else ``$DDNS_WIZARD_CONFIG``, else
``config.toml`` in the platform's user config directory.

The file holds secrets, so it is written atomically (temporary file in the same
directory, fsync, rename) with mode 0600, and a file that cannot be parsed is
never overwritten without first being copied aside.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError, ConfigSyntaxError

ENV_VAR = "DDNS_WIZARD_CONFIG"

# Keys of a [[hosts]] table whose values are secrets: never printed, never reported.
SECRET_KEYS = frozenset({"password", "token", "key", "secret", "tsig_secret", "api_key", "api_token"})

DEFAULT_ENDPOINTS: dict[str, Any] = {
    # asked over IPv4 only (each request pinned to the family)
    "ip_echo": ["https://api.ipify.org", "https://ipv4.icanhazip.com"],
    # asked over IPv6 only; two services of their own, like IPv4, so that one wrong
    # answer can never be published alone (checks/updater.py's quorum)
    "ip_echo_v6": ["https://api6.ipify.org", "https://ipv6.icanhazip.com"],
    "dns_echo": ["opendns", "cloudflare"],
    # the same methods asked at their IPv6 servers (together one voice in the quorum)
    "dns_echo_v6": ["opendns", "cloudflare"],
    "stun": ["stun.l.google.com:19302", "stun.cloudflare.com:3478"],
    # Outside TCP checks (checks/probers.py; why these two: README "Port probers"):
    # ifconfig.co (echoip; one automated request a minute) first, portchecker.io's
    # "me" endpoint when ifconfig.co cannot be asked.
    "port_check": ["https://ifconfig.co/port/{port}", "portchecker+https://portchecker.io"],
    # asked over IPv6 (`ports check --ipv6`): portchecker.io tests IPv4 only
    "port_check_v6": ["https://ifconfig.co/port/{port}"],
    "outbound_target": "portquiz.net",
    "resolvers": ["1.1.1.1", "8.8.8.8", "9.9.9.9"],
}

_LIST_KEYS = ("ip_echo", "ip_echo_v6", "dns_echo", "dns_echo_v6", "stun", "port_check", "port_check_v6",
              "resolvers")


@dataclass(frozen=True)
class Endpoints:
    """Every outside service the tool contacts. An empty list disables that method.

    ``dns_echo`` entries are a method name (``opendns``, ``cloudflare``, ``google``)
    optionally followed by ``@HOST[:PORT]`` to ask another server (the lab does);
    ``dns_echo_v6`` the same, asked over IPv6 (the method's IPv6 server, or HOST's
    AAAA record).
    """

    ip_echo: tuple[str, ...] = tuple(DEFAULT_ENDPOINTS["ip_echo"])
    ip_echo_v6: tuple[str, ...] = tuple(DEFAULT_ENDPOINTS["ip_echo_v6"])
    dns_echo: tuple[str, ...] = tuple(DEFAULT_ENDPOINTS["dns_echo"])
    dns_echo_v6: tuple[str, ...] = tuple(DEFAULT_ENDPOINTS["dns_echo_v6"])
    stun: tuple[str, ...] = tuple(DEFAULT_ENDPOINTS["stun"])
    port_check: tuple[str, ...] = tuple(DEFAULT_ENDPOINTS["port_check"])
    port_check_v6: tuple[str, ...] = tuple(DEFAULT_ENDPOINTS["port_check_v6"])
    outbound_target: str = DEFAULT_ENDPOINTS["outbound_target"]
    resolvers: tuple[str, ...] = tuple(DEFAULT_ENDPOINTS["resolvers"])


@dataclass(frozen=True)
class HostConfig:
    """One ``[[hosts]]`` entry: a hostname kept up to date with one provider."""

    hostname: str
    provider: str
    server: str | None = None
    username: str | None = None
    password: str | None = None
    token: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)   # provider-specific extra keys

    def secret_values(self) -> list[str]:
        vals = [self.password, self.token]
        vals += [str(v) for k, v in self.options.items() if k in SECRET_KEYS]
        return [v for v in vals if v]

    def to_toml_table(self) -> dict[str, Any]:
        out: dict[str, Any] = {"hostname": self.hostname, "provider": self.provider}
        for key in ("server", "username", "password", "token"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out.update(dict(self.options))
        return out


@dataclass(frozen=True)
class Config:
    endpoints: Endpoints = field(default_factory=Endpoints)
    hosts: tuple[HostConfig, ...] = ()
    path: Path | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)   # other top-level tables, kept as-is

    def secret_values(self) -> list[str]:
        """Every secret in this configuration (for redaction)."""
        out: list[str] = []
        for host in self.hosts:
            out.extend(host.secret_values())
        return out

    def with_hosts(self, hosts: tuple[HostConfig, ...]) -> "Config":
        return replace(self, hosts=hosts)


def default_config_path() -> Path:
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_dir  # lazy: only when needed

    return Path(user_config_dir("ddns-wizard")) / "config.toml"


def resolve_path(path: str | os.PathLike[str] | None) -> Path:
    return Path(path).expanduser() if path else default_config_path()


_LINE_RE = re.compile(r"at line (\d+)")


def load_config(path: str | os.PathLike[str] | None = None, *, must_exist: bool = False) -> Config:
    """Load and validate the configuration.

    A missing file gives the defaults (with ``path`` set, so a later save goes
    there) unless ``must_exist``.  Raises ``ConfigSyntaxError`` (with the line) for
    a file that is not TOML and ``ConfigError`` for one whose values are wrong.
    """
    p = resolve_path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        if must_exist:
            raise ConfigError(f"configuration file {p} does not exist", path=str(p)) from None
        return Config(path=p)
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {p}: {exc.strerror or exc}", path=str(p)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigSyntaxError(
            f"{p}, line {line}: not UTF-8 text", path=str(p), line=line
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _LINE_RE.search(str(exc))
        line = int(m.group(1)) if m else None
        if line is None and "end of document" in str(exc):
            line = text.rstrip("\n").count("\n") + 1   # a truncated file: the last line
        msg = str(exc)
        where = f"{p}, line {line}" if line else str(p)
        raise ConfigSyntaxError(f"{where}: not valid TOML ({msg})", path=str(p), line=line) from None
    return config_from_dict(data, path=p)


def config_from_dict(data: Mapping[str, Any], *, path: Path | None = None) -> Config:
    where = str(path) if path else "configuration"
    endpoints_raw = data.get("endpoints", {})
    if not isinstance(endpoints_raw, dict):
        raise ConfigError(f"{where}: [endpoints] must be a table", path=where)
    ep: dict[str, Any] = {}
    for key, value in endpoints_raw.items():
        if key in _LIST_KEYS:
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: endpoints.{key} must be a list of strings", path=where)
            ep[key] = tuple(v.strip() for v in value if v.strip())
        elif key == "outbound_target":
            if not isinstance(value, str):
                raise ConfigError(f"{where}: endpoints.outbound_target must be a string", path=where)
            ep[key] = value.strip()
        else:
            raise ConfigError(
                f"{where}: unknown key endpoints.{key} (known: {', '.join(_LIST_KEYS + ('outbound_target',))})",
                path=where,
            )
    hosts_raw = data.get("hosts", [])
    if not isinstance(hosts_raw, list):
        raise ConfigError(f"{where}: hosts must be an array of tables ([[hosts]])", path=where)
    hosts: list[HostConfig] = []
    for i, h in enumerate(hosts_raw, start=1):
        if not isinstance(h, dict):
            raise ConfigError(f"{where}: hosts entry {i} must be a table", path=where)
        hostname = h.get("hostname")
        provider = h.get("provider")
        if not isinstance(hostname, str) or not hostname.strip():
            raise ConfigError(f"{where}: hosts entry {i} has no hostname", path=where)
        if not isinstance(provider, str) or not provider.strip():
            raise ConfigError(f"{where}: hosts entry {i} ({hostname}) has no provider", path=where)
        fields_: dict[str, Any] = {}
        for key in ("server", "username", "password", "token"):
            value = h.get(key)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{where}: hosts entry {i} ({hostname}): {key} must be a string", path=where)
            fields_[key] = value
        options = {k: v for k, v in h.items()
                   if k not in ("hostname", "provider", "server", "username", "password", "token")}
        hosts.append(HostConfig(hostname=hostname.strip().rstrip(".").lower(), provider=provider.strip().lower(),
                                options=options, **fields_))
    settings = {k: v for k, v in data.items() if k not in ("endpoints", "hosts")}
    return Config(endpoints=Endpoints(**ep), hosts=tuple(hosts), path=path, settings=settings)


def config_to_dict(config: Config) -> dict[str, Any]:
    ep = config.endpoints
    out: dict[str, Any] = dict(config.settings)
    out["endpoints"] = {
        "ip_echo": list(ep.ip_echo),
        "ip_echo_v6": list(ep.ip_echo_v6),
        "dns_echo": list(ep.dns_echo),
        "dns_echo_v6": list(ep.dns_echo_v6),
        "stun": list(ep.stun),
        "port_check": list(ep.port_check),
        "port_check_v6": list(ep.port_check_v6),
        "outbound_target": ep.outbound_target,
        "resolvers": list(ep.resolvers),
    }
    out["hosts"] = [h.to_toml_table() for h in config.hosts]
    return out


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600 (secrets inside)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename durable too
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def save_config(config: Config, path: str | os.PathLike[str] | None = None) -> Path:
    """Save atomically, mode 0600. A damaged existing file is copied aside first.

    Returns the path written.
    """
    import tomli_w  # lazy: only commands that save need it

    p = Path(path).expanduser() if path else (config.path or default_config_path())
    if p.exists():
        try:
            tomllib.loads(p.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            backup = p.with_name(f"{p.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            shutil.copy2(p, backup)
            os.chmod(backup, 0o600)
    write_private_file(p, tomli_w.dumps(config_to_dict(config)).encode("utf-8"))
    return p
