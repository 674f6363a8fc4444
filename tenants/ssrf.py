"""Outbound HTTP to URLs tenants give us (tools, webhook endpoints) may only reach the public
internet.

Every destination is resolved and each address checked: loopback, private, link-local (cloud
metadata), multicast, reserved and other non-global addresses are refused, unless listed in
TOOL_HTTP_ALLOWED_PRIVATE_HOSTS. The request then connects to the checked address itself, so a
second DNS answer cannot point it elsewhere, and every redirect is checked the same way.
"""

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedDestination(Exception):
    pass


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    address: str


def _allowed_private(host: str, address: IPAddress) -> bool:
    for entry in settings.TOOL_HTTP_ALLOWED_PRIVATE_HOSTS:
        if entry == host:
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def _is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_url(url: str) -> Destination:
    """Resolve `url`'s host and return the address to connect to, or raise BlockedDestination."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BlockedDestination(f"Only http and https URLs are allowed, not {parts.scheme!r}.")
    host = parts.hostname
    if not host:
        raise BlockedDestination("The URL has no host.")
    if parts.username or parts.password:
        raise BlockedDestination("Put credentials in an integration, not in the URL.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise BlockedDestination(f"{host} does not resolve.") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in addresses:
        if not _is_public(address) and not _allowed_private(host, address):
            raise BlockedDestination(
                f"{host} resolves to {address}, which is not a public address."
            )
    return Destination(parts.scheme, host, port, str(addresses[0]))


def pin(url: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL rewritten to the checked address, plus the Host header and TLS name to keep."""
    destination = check_url(url)
    parts = urlsplit(url)
    address = destination.address
    netloc = f"[{address}]" if ":" in address else address
    default_port = 443 if destination.scheme == "https" else 80
    if destination.port != default_port:
        netloc += f":{destination.port}"
    host_header = parts.netloc.rsplit("@", 1)[-1]
    extensions = {"sni_hostname": destination.host} if destination.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), {"Host": host_header}, extensions
