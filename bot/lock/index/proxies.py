"""HTTP proxies from the environment, as curl, pip and uv read them.

``https_proxy`` / ``http_proxy`` (``all_proxy`` for both; either case, the lower-case one
wins), except to the hosts in ``no_proxy``.  Only ``http://`` proxies are supported:
:mod:`bot.lock.index.http` tunnels HTTPS through them with ``CONNECT`` and asks them for plain-HTTP
URLs whole.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

from bot.core.errors import IndexError_, register_secrets, without_credentials


@dataclass(frozen=True)
class Proxy:
    """An HTTP proxy from the environment (``https_proxy`` and friends)."""

    host: str
    port: int
    auth: str | None  #: a Proxy-Authorization value, from the proxy URL's user and password
    var: str  #: the environment variable it came from, for error messages


class Proxies:
    """Which proxy, if any, a request goes through (read from the environment once)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        found: dict[str, str] = {}  #: "https" -> the variable that sets it
        for name in sorted(env, key=str.islower):  # upper case first, then overridden
            if name.lower().endswith("_proxy") and env[name]:
                found[name[: -len("_proxy")].lower()] = name
        self._no_proxy = env[found["no"]] if "no" in found else ""
        self._by_scheme: dict[str, Proxy] = {}
        for scheme in ("http", "https"):
            var = found.get(scheme) or found.get("all")
            if var:
                self._by_scheme[scheme] = _proxy(env[var], var)

    def for_target(self, scheme: str, host: str, port: int) -> Proxy | None:
        proxy = self._by_scheme.get(scheme)
        if proxy is None or _bypassed(host, port, self._no_proxy):
            return None
        return proxy


def _bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``no_proxy`` names the host: ``*``; a domain (``example.com`` and
    ``.example.com`` both cover its subdomains); an IP address or a CIDR network; each may
    end in ``:port``."""
    if not no_proxy:
        return False
    import ipaddress

    host = host.lower().strip("[]").rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in no_proxy.lower().replace(",", " ").split():
        if entry == "*":
            return True
        name, entry_port = entry, ""
        if entry.startswith("["):  # [IPv6] or [IPv6]:port
            name, _, rest = entry[1:].partition("]")
            entry_port = rest.removeprefix(":")
        elif entry.count(":") == 1:
            name, _, entry_port = entry.partition(":")
        if entry_port and entry_port != str(port):
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                continue
        else:
            domain = name.lstrip("*").lstrip(".")
            if domain and (host == domain or host.endswith("." + domain)):
                return True
    return False


def _proxy(url: str, var: str) -> Proxy:
    register_secrets([url if "://" in url else f"http://{url}"])
    parts = urlsplit(url if "://" in url else f"http://{url}")
    try:
        port = parts.port or 80
    except ValueError:
        port = -1
    if parts.scheme.lower() != "http" or not parts.hostname or port < 0:
        raise IndexError_(
            f"unsupported proxy {without_credentials(url)!r} in ${var}",
            hint="give an http:// proxy (host and port), or unset the variable",
        )
    return Proxy(parts.hostname, port, basic_auth(parts), var)


def basic_auth(parts: SplitResult) -> str | None:
    """A Basic ``Authorization`` (or ``Proxy-Authorization``) value for the user and
    password in a URL, if it has them."""
    if parts.username is None:
        return None
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")
