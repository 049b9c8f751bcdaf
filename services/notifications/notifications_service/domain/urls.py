"""Which webhook URLs may be called: the scheme and the addresses the host resolves to (pure).

Refused: anything but https (plain http only to loopback, and loopback only outside production),
credentials in the URL, and any address that is not globally routable: private ranges (10/8,
172.16/12, 192.168/16, fc00::/7), link-local (169.254/16 with the cloud metadata address
169.254.169.254, fe80::/10), shared/CGNAT (100.64/10, where some clouds keep their metadata),
unspecified, multicast, reserved, documentation ranges, and IPv4 hidden in IPv6 (::ffff:10.0.0.1).
The host is checked when the subscription is written and again, resolved afresh, before each request,
which is then sent to the checked address (DNS rebinding cannot swap it in between).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from notifications_service.domain.errors import UnsafeUrl

MAX_URL_LENGTH = 2048
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


@dataclass(frozen=True)
class WebhookUrl:
    url: str
    scheme: str
    host: str  # without brackets for IPv6
    port: int
    target: str  # path and query, at least "/"

    @property
    def literal_address(self) -> IpAddress | None:
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


def parse_webhook_url(url: str, *, allow_loopback: bool) -> WebhookUrl:
    """The URL's parts, or UnsafeUrl saying what is wrong with it (before any DNS lookup)."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"Not a valid URL ({exc}).") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if scheme not in ("https", "http") or not host:
        raise UnsafeUrl("Give an absolute https:// URL, such as https://partner.example/hooks/ee.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("Credentials in the URL are not accepted; the signature authenticates us.")
    if parts.fragment:
        raise UnsafeUrl("A fragment (#...) is never sent; remove it.")
    webhook = WebhookUrl(
        url=url.strip(),
        scheme=scheme,
        host=host,
        port=port or (443 if scheme == "https" else 80),
        target=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
    )
    literal = webhook.literal_address
    if literal is not None:
        check_address(literal, allow_loopback=allow_loopback)
    loopback_name = host == "localhost" or host.endswith(".localhost")
    if scheme == "http":
        is_loopback = loopback_name or (literal is not None and literal.is_loopback)
        if not (allow_loopback and is_loopback):
            raise UnsafeUrl(
                "Plain http is refused: use https (http is accepted only for a loopback receiver "
                "outside production)."
            )
    if loopback_name and not allow_loopback:
        raise UnsafeUrl("localhost is not a reachable receiver in production; give a public https URL.")
    return webhook


def check_address(address: IpAddress, *, allow_loopback: bool) -> None:
    """UnsafeUrl unless `address` is globally routable (or loopback, when allowed)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        if allow_loopback:
            return
        raise UnsafeUrl(f"{address} is a loopback address: give a public https URL.")
    if address in METADATA_ADDRESSES:
        raise UnsafeUrl(f"{address} is a cloud metadata address: webhooks are never sent there.")
    if address.is_link_local:
        raise UnsafeUrl(f"{address} is a link-local address: webhooks are never sent there.")
    if address.is_private:
        raise UnsafeUrl(f"{address} is a private address: give a URL reachable from the internet.")
    if address.is_multicast or address.is_unspecified or address.is_reserved or not address.is_global:
        raise UnsafeUrl(f"{address} is not a globally routable address: give a public URL.")


def check_addresses(webhook: WebhookUrl, addresses: Iterable[str], *, allow_loopback: bool) -> IpAddress:
    """Every address the host resolved to must be acceptable; the first one is the one to call."""
    checked: list[IpAddress] = []
    for raw in addresses:
        address = ipaddress.ip_address(raw.split("%", 1)[0])
        check_address(address, allow_loopback=allow_loopback)
        checked.append(address)
    if not checked:
        raise UnsafeUrl(f"{webhook.host} does not resolve to any address: check the host name.")
    return checked[0]
