"""Which addresses webhook deliveries may reach: never loopback, private, link-local,
multicast, reserved or cloud-metadata ones, unless VBCRM_WEBHOOKS_ALLOW_PRIVATE is on.
Checked when an endpoint is saved and again at each delivery (DNS can change)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

# Cloud metadata services (AWS/GCP/Azure on 169.254.169.254, AWS's IPv6 one).
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class AddressRefused(Exception):
    """The URL's host is, or resolves to, an address deliveries may not reach."""


def address_allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if settings.VBCRM_WEBHOOKS_ALLOW_PRIVATE:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip in _METADATA
        or ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, all of them allowed, or AddressRefused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressRefused(_("The host name does not resolve.")) from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        if not address_allowed(ipaddress.ip_address(address.split("%", 1)[0])):
            raise AddressRefused(
                _("This address is not allowed for webhooks (loopback, private or metadata).")
            )
    return addresses


def url_check(url: str) -> None:
    """At registration: an http(s) URL whose host resolves only to allowed addresses."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise AddressRefused(_("Enter an http:// or https:// URL."))
    resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
