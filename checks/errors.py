"""The errors a caller of the engine must handle.

Probe failures are *data* (a result with ``status="error"``), never exceptions.
Exceptions are kept for what stops a command: bad configuration, bad
credentials, a provider that refuses.  One tree, rooted in one class::

    DdnsWizardError
    ├── ConfigError            the configuration file is missing, unreadable or invalid
    │   └── ConfigSyntaxError  not TOML; carries the file and line
    ├── UsageError             a command-line value that cannot be used (bad port, ...)
    │   └── AddressError       a ``host[:port]`` that cannot be used (also a ValueError)
    ├── OutputError            a file the command was asked to write could not be written (disk full, ...)
    ├── ProviderError          a DDNS provider said no
    │   ├── CredentialError    the provider rejected the credentials (badauth, 401, ...)
    │   └── ProviderRefused    abuse / blocked / host not in account: stop, do not retry
    ├── UpnpError              the router's IGD refused an action (with its UPnP code)
    └── MappingError           a port mapping could not be made or removed (UPnP or NAT-PMP; with its code)
"""

from __future__ import annotations


class DdnsWizardError(Exception):
    """Base of every error the engine raises on purpose."""


class ConfigError(DdnsWizardError):
    """The configuration cannot be used."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class ConfigSyntaxError(ConfigError):
    """The configuration file is not valid TOML."""

    def __init__(self, message: str, *, path: str, line: int | None = None) -> None:
        super().__init__(message, path=path)
        self.line = line


class UsageError(DdnsWizardError):
    """A value given on the command line (or in the wizard) cannot be used."""


class AddressError(UsageError, ValueError):
    """A ``host[:port]`` (a configured server, ``--listen``, ``--to``) that cannot be used.

    Also a ``ValueError``: a probe handed a bad server from the configuration records it
    as data, as it does any other unusable value."""


class OutputError(DdnsWizardError):
    """A file the user asked for (configuration, report) could not be written; the old one is unchanged."""

    def __init__(self, message: str, *, path: str | None = None, errno: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.errno = errno


class ProviderError(DdnsWizardError):
    """A DDNS provider did not accept a request."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class CredentialError(ProviderError):
    """The provider rejected the credentials."""


class ProviderRefused(ProviderError):
    """The provider refuses to serve this host (abuse, blocked, no such host)."""


class UpnpError(DdnsWizardError):
    """The router's UPnP IGD refused an action."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class MappingError(DdnsWizardError):
    """The router refused to create or remove a port mapping (UPnP IGD or NAT-PMP; ``code`` is
    the UPnP error code or the NAT-PMP result code)."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
