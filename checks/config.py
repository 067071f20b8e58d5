"""Configuration: the TOML file of DESIGN.md, loaded, validated and saved safely.

Where the file lives: ``--config FILE``, else ``$DDNS_WIZARD_CONFIG``, else
``config.toml`` in the platform's user config directory.

The file holds secrets, so it is written atomically (temporary file in the same
directory, fsync, rename) with mode 0600, and a file that cannot be parsed is
never overwritten without first being copied aside.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
import time
import tomllib
import urllib.parse as _urlparse
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from checks.errors import ConfigError, ConfigSyntaxError, OutputError
from checks.files import MAX_CONFIG_BYTES, NotRegularFile, read_regular_file

ENV_VAR = "DDNS_WIZARD_CONFIG"

# Keys of a [[hosts]] table whose values are secrets: never printed, never reported.
SECRET_KEYS = frozenset({"password", "token", "key", "secret", "tsig_secret", "api_key", "api_token"})

DEFAULT_ENDPOINTS: dict[str, Any] = {
    # asked over IPv4 only (each request pinned to the family)
    "ip_echo": ["https://api.ipify.org", "https://ipv4.icanhazip.com"],
    # asked over IPv6 only; two services of their own, like IPv4, so that one wrong
    # answer can never be published alone (checks/ddns/updater.py's quorum)
    "ip_echo_v6": ["https://api6.ipify.org", "https://ipv6.icanhazip.com"],
    "dns_echo": ["opendns", "cloudflare"],
    # the same methods asked at their IPv6 servers (together one voice in the quorum)
    "dns_echo_v6": ["opendns", "cloudflare"],
    "stun": ["stun.l.google.com:19302", "stun.cloudflare.com:3478"],
    # Outside TCP checks (checks/portcheck/probers.py; why these two: docs/commands.md "Port probers"):
    # ifconfig.co (echoip; one automated request a minute) first, portchecker.io's
    # "me" endpoint when ifconfig.co cannot be asked.
    "port_check": ["https://ifconfig.co/port/{port}", "portchecker+https://portchecker.io"],
    # asked over IPv6 (`ports check --ipv6`): portchecker.io tests IPv4 only
    "port_check_v6": ["https://ifconfig.co/port/{port}"],
    "outbound_target": "portquiz.net",
    "resolvers": ["1.1.1.1", "8.8.8.8", "9.9.9.9"],
}

_LIST_KEYS = ("ip_echo", "ip_echo_v6", "dns_echo", "dns_echo_v6", "stun", "port_check", "port_check_v6", "resolvers")


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
    options: Mapping[str, Any] = field(default_factory=dict)  # provider-specific extra keys

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
    settings: Mapping[str, Any] = field(default_factory=dict)  # other top-level tables, kept as-is

    def secret_values(self) -> list[str]:
        """Every secret in this configuration (for redaction)."""
        out: list[str] = []
        for host in self.hosts:
            out.extend(host.secret_values())
        out.extend(notify_secret_values(self.settings))  # [notify] URLs carry tokens
        return out

    def with_hosts(self, hosts: tuple[HostConfig, ...]) -> Config:
        return replace(self, hosts=hosts)


def notify_secret_values(settings: Mapping[str, Any]) -> list[str]:
    """Every secret a ``[notify]`` table holds (whole URLs and their secret-looking parts),
    for redaction (checks/ddns/notify.py reads the table).  Never raises: a malformed
    table still has its strings masked."""
    table = settings.get("notify", {})
    if not isinstance(table, dict):
        return []
    values: list[str] = []
    urls = table.get("urls", [])
    if isinstance(urls, str):
        urls = [urls]
    if isinstance(urls, list):
        values += [u for u in urls if isinstance(u, str)]
    ping = table.get("ping")
    if isinstance(ping, str):
        values.append(ping)
    out: list[str] = []
    for url in values:
        url = url.strip()
        if not url:
            continue
        out.append(url)
        out.extend(_url_parts(url))
    return out


def _url_parts(url: str) -> list[str]:
    """The pieces of a notification URL that may be a token on their own: userinfo, host
    (Telegram's bot token, Discord's webhook id sit there), path segments, query values."""
    parts: list[str] = []
    try:
        split = _urlparse.urlsplit(url)
    except ValueError:
        return parts
    netloc = split.netloc
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        parts += [p for p in userinfo.split(":") if p]
    host = netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc
    if host and "." not in host:  # a token in the host position, not a DNS name
        parts.append(host)
    parts += [seg for seg in split.path.split("/") if len(seg) >= 6]
    parts += [v for _, v in _urlparse.parse_qsl(split.query) if len(v) >= 6]
    return [_urlparse.unquote(p) for p in parts] + parts


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
        raw = read_regular_file(p, limit=MAX_CONFIG_BYTES)
    except FileNotFoundError:
        if must_exist:
            raise ConfigError(f"configuration file {p} does not exist", path=str(p)) from None
        return Config(path=p)
    except NotRegularFile as exc:
        raise ConfigError(f"configuration file {p} is {exc}: give the path of a TOML file", path=str(p)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {p}: {exc.strerror or exc}", path=str(p)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = raw[: exc.start].count(b"\n") + 1
        raise ConfigSyntaxError(f"{p}, line {bad_line}: not UTF-8 text", path=str(p), line=bad_line) from None
    try:
        data = tomllib.loads(text)
    except RecursionError:
        # tomllib recurses once per nested array or inline table: 2000 '[' exhaust the stack.
        raise ConfigSyntaxError(f"{p}: not valid TOML (arrays or tables nested too deeply)", path=str(p)) from None
    except tomllib.TOMLDecodeError as exc:
        m = _LINE_RE.search(str(exc))
        line = int(m.group(1)) if m else None
        if line is None and "end of document" in str(exc):
            line = text.rstrip("\n").count("\n") + 1  # a truncated file: the last line
        msg = str(exc)
        where = f"{p}, line {line}" if line else str(p)
        raise ConfigSyntaxError(f"{where}: not valid TOML ({msg})", path=str(p), line=line) from None
    if _nesting_depth(data) > MAX_NESTING:
        raise ConfigError(
            f"{p}: values nested more than {MAX_NESTING} levels deep; a ddns-wizard configuration needs a few",
            path=str(p),
        )
    return config_from_dict(data, path=p)


MAX_NESTING = 16


def _nesting_depth(value: Any) -> int:
    """How deep arrays and tables nest (iteratively: the value may be as deep as tomllib allowed)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_NESTING:
            break
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


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
        options = {
            k: v for k, v in h.items() if k not in ("hostname", "provider", "server", "username", "password", "token")
        }
        hosts.append(
            HostConfig(hostname=_dns_spelling(hostname), provider=provider.strip().lower(), options=options, **fields_)
        )
    settings = {k: v for k, v in data.items() if k not in ("endpoints", "hosts")}
    return Config(endpoints=Endpoints(**ep), hosts=tuple(hosts), path=path, settings=settings)


def _dns_spelling(hostname: str) -> str:
    """The name as DNS spells it: a Unicode name (``bücher.example``) becomes its
    ASCII form (``xn--bcher-kva.example``); a name IDNA cannot encode is kept as typed
    so validation can say what is wrong with it."""
    from checks.idn import IdnError, to_ascii

    try:
        return to_ascii(hostname)
    except IdnError:
        return hostname.strip().rstrip(".").lower()


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


_TEMP_SUFFIX = ".tmp"
_TEMP_RANDOM_RE = re.compile(r"[a-z0-9_]{8}")  # tempfile.mkstemp's random part


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temporary files that interrupted saves of ``path`` left behind.

    They hold whatever was being saved (a configuration: secrets).  A save in progress
    holds an exclusive ``flock`` on its temporary file until the rename, so a file whose
    lock can be taken belongs to a save that died (SIGKILL, power loss) and is removed;
    a locked one is left to its writer.  Returns the paths removed.
    """
    try:
        import fcntl
    except ImportError:  # no flock (Windows): cannot tell a live save from a dead one
        return []
    prefix = _temp_prefix(path)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (
            name.startswith(prefix)
            and name.endswith(_TEMP_SUFFIX)
            and _TEMP_RANDOM_RE.fullmatch(name[len(prefix) : -len(_TEMP_SUFFIX)])
        ):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            fd = os.open(entry.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a save in progress in another process
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
        finally:
            os.close(fd)  # also releases the lock
    return removed


def _locked_temp(path: Path) -> tuple[int, str]:
    """A new temporary file next to ``path``, mode 0600, locked (see ``remove_stale_temps``)."""
    import fcntl

    for _ in range(10):
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=_TEMP_SUFFIX, dir=path.parent)
        try:
            os.fchmod(fd, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            # Another save's cleanup may have taken it for a dead one's between mkstemp and flock.
            st, mine = os.stat(tmp), os.fstat(fd)
            if (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino):
                return fd, tmp
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    raise OSError(errno.EAGAIN, "could not create a temporary file that stays put", str(path.parent))


_WHY = {
    errno.ENOSPC: "no space left on the device (the disk is full)",
    errno.EDQUOT: "your disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EFBIG: "the file is larger than the file system allows",
    errno.EIO: "an input/output error (the disk may be failing)",
}


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600 (secrets inside).

    Temporary file in the same directory, fsync, rename: ``path`` holds either the old
    or the new bytes, never a mix.  The temporary file is removed when the write fails,
    and temporary files of earlier saves that were killed are removed first.  Raises
    ``OutputError`` saying what went wrong (a full disk, a read-only file system...).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)
        fd, tmp = _locked_temp(path)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
                os.replace(tmp, path)  # still holding the lock: no cleanup can take it first
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
    except OSError as exc:
        why = _WHY.get(exc.errno or 0) or exc.strerror or str(exc)
        existed = path.exists()
        raise OutputError(
            f"cannot write {path}: {why}; " + (f"{path.name} is unchanged" if existed else "nothing was written"),
            path=str(path),
            errno=exc.errno,
        ) from None
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
    try:
        old = read_regular_file(p, limit=MAX_CONFIG_BYTES)
    except FileNotFoundError:
        old = None
    except NotRegularFile as exc:
        raise ConfigError(f"{p} is {exc}: the configuration can only be saved to a regular file", path=str(p)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {p} before replacing it: {exc.strerror or exc}", path=str(p)) from None
    if old is not None:
        try:
            tomllib.loads(old.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError):
            backup = p.with_name(f"{p.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            write_private_file(backup, old)
    write_private_file(p, tomli_w.dumps(config_to_dict(config)).encode("utf-8"))
    return p
