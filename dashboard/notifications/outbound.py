"""Which URLs a webhook may reach, and a connection to exactly the address that was checked.

A webhook URL is typed by an operator, and VelaOps POSTs to it from inside the VPC, so without a check
it could reach the instance metadata service (credentials), the database or any internal endpoint.
Only http and https are allowed, without a user name or password, to a host whose every address (as
getaddrinfo resolves it, so 2130706433 and 0x7f.1 count as what they are) is public. Addresses inside
WEBHOOK_ALLOWED_NETWORKS are allowed besides; cloud metadata addresses and names never are.

The check runs when the URL is saved (dashboard.notifications.forms.validate_webhook_url) and again
when sending, because a name can resolve elsewhere later; the send then connects to the addresses it
checked (see PinnedHTTPConnection), so a second lookup cannot swap in an internal address (DNS rebinding).
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance metadata and credential endpoints: AWS IMDS (IPv4 and the Nitro IPv6 form; GCP and Azure
# use the same IPv4 address), the ECS task metadata / credentials endpoint, EKS Pod Identity.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "169.254.170.23", "fd00:ec2::23")
)
METADATA_NAMES = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal"}
)

SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598, carrier-grade NAT: not global
NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the low 32 bits are the IPv4 address
# Special-purpose blocks (IANA registries) that Python 3.11's ipaddress still calls global.
NOT_GLOBAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "192.0.0.0/24",  # IETF protocol assignments
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215): the embedded IPv4 depends on the local prefix
        "2001::/23",  # IETF protocol assignments, Teredo (2001::/32) included
    )
)


class Refused(Exception):
    """The URL may not be reached: final, retrying cannot change it. The message names the host at most."""


class Unresolvable(Exception):
    """The host name did not resolve now; it may later."""


@dataclass(frozen=True)
class Destination:
    """A checked URL: what the request says (host for Host and TLS, path) and where it may connect."""

    scheme: str
    host: str
    port: int
    target: str  # path and query, for the request line
    addresses: tuple[tuple[int, tuple], ...]  # (family, sockaddr) from getaddrinfo, each one checked


def redact(url: str) -> str:
    """scheme://host/… : enough to recognise a URL, never its user, password, path or query (secrets)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "the webhook"
    if not host:
        return "the webhook"
    return f"{parts.scheme}://{f'[{host}]' if ':' in host else host}/…"


def parse(url: str) -> SplitResult:
    """The checks that need no DNS: scheme, credentials, host and port, metadata and localhost names."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 — raises ValueError for a port that is not a number in range
    except ValueError:
        raise Refused("the URL is not valid") from None
    if parts.scheme not in ("http", "https"):
        raise Refused("only http:// and https:// URLs are allowed")
    if "@" in parts.netloc or parts.username is not None:
        raise Refused("the URL must not contain a user name or password (put a token in the path instead)")
    if not parts.hostname:
        raise Refused("the URL has no host")
    name = parts.hostname.rstrip(".")
    if name in METADATA_NAMES:
        raise Refused(f"{name} is a cloud metadata service")
    if name == "localhost" or name.endswith(".localhost"):
        if not _allowed(ipaddress.ip_address("127.0.0.1")):
            raise Refused(f"{name} is a loopback name")
    return parts


def address_refusal(address: Address) -> str | None:
    """Why VelaOps will not connect to this address, or None when it may."""
    inner = _embedded_ipv4(address)
    if address in METADATA_ADDRESSES or inner in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if _allowed(address) or (inner is not None and _allowed(inner)):
        return None
    if inner is not None:
        why = address_refusal(inner)
        return f"an IPv6 form of {why}" if why else None
    if isinstance(address, ipaddress.IPv6Address) and address.teredo:
        return "a Teredo tunnel address"
    for test, why in (
        (address.is_unspecified, "the unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address in SHARED_ADDRESS_SPACE, "a shared (carrier-grade NAT) address"),
        (isinstance(address, ipaddress.IPv6Address) and address.is_site_local, "a site-local address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (any(address in network for network in NOT_GLOBAL), "a special-purpose address"),
        (not address.is_global, "not a public address"),
    ):
        if test:
            return why
    return None


def check_host_addresses(host: str, addresses: Iterable[Address]) -> None:
    """Refused unless every address is reachable: a name that also resolves inside is not trusted."""
    literal = _literal(host)
    for address in addresses:
        why = address_refusal(address)
        if why:
            # A literal address is the operator's own input; what a name resolves to is not repeated.
            raise Refused(f"{host} is {why}" if literal else f"{host} resolves to {why}")


def resolve(url: str) -> Destination:
    """The checked destination of `url`, or Refused / Unresolvable."""
    parts = parse(url)
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except ValueError:  # UnicodeError (a label too long for IDNA), an embedded NUL
        raise Refused(f"{host!r} is not a valid host name") from None
    except socket.gaierror as exc:
        raise Unresolvable(f"{host} could not be resolved ({exc.strerror or exc})") from None
    addresses = tuple(dict.fromkeys((family, sockaddr) for family, _, _, _, sockaddr in found))
    if not addresses:
        raise Unresolvable(f"{host} could not be resolved")
    check_host_addresses(host, (ipaddress.ip_address(sockaddr[0]) for _, sockaddr in addresses))
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(parts.scheme, host, port, target, addresses)


class PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to one checked (family, sockaddr), while the Host header (and, for HTTPS, SNI
    and the certificate check) use the URL's host name. http.client's own connect() would resolve the
    name again, and a rebinding DNS server could answer with an internal address the second time; this
    connect() never resolves. http.client follows no redirects either, so no hop escapes the check."""

    def __init__(self, destination: Destination, address: tuple[int, tuple], timeout: float):
        super().__init__(destination.host, destination.port, timeout=timeout)
        self._family, self._sockaddr = address

    def connect(self) -> None:
        sock = socket.socket(self._family, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._sockaddr)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = self._wrap(sock)
        except BaseException:
            sock.close()
            raise

    def _wrap(self, sock: socket.socket) -> socket.socket:
        return sock


class PinnedHTTPSConnection(PinnedHTTPConnection):
    default_port = 443  # Host: header without ":443"

    def _wrap(self, sock: socket.socket) -> socket.socket:
        # The same trust store and verification as urllib's default: certificate and host name checked.
        return _tls_context().wrap_socket(sock, server_hostname=self.host)


def connect(destination: Destination, timeout: float) -> PinnedHTTPConnection:
    """A connection to the first checked address that answers (as socket.create_connection tries them)."""
    kind = PinnedHTTPSConnection if destination.scheme == "https" else PinnedHTTPConnection
    error = OSError(f"{destination.host}: no address to connect to")
    for address in destination.addresses:
        connection = kind(destination, address, timeout)
        try:
            connection.connect()
        except OSError as exc:
            connection.close()
            error = exc
            continue
        return connection
    raise error


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form stands for: IPv4-mapped (::ffff:a.b.c.d), 6to4 (2002::/16), NAT64."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _allowed(address: Address) -> bool:
    return any(address in network for network in _allowed_networks(tuple(settings.WEBHOOK_ALLOWED_NETWORKS)))


@functools.cache
def _allowed_networks(networks: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(network) for network in networks)


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
