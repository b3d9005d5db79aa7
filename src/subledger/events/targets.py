"""Where the server may send a webhook, and how it gets there: to a public address only.

Any app's key may name a webhook URL, so without a guard the server would post to its own
network (a database's admin port, a cloud's metadata service) and say what answered. A URL
is vetted as it is registered and again for every request: its host is resolved, every
address is checked, and the connection goes to the address that was checked (the URL's
host is kept for ``Host`` and TLS), so a name that resolves to a public address once and a
private one the next time (DNS rebinding) gets nowhere. An operator whose receivers are on
its own network allows private addresses (``SUBLEDGER_WEBHOOK_ALLOW_PRIVATE_NETWORKS``).
"""

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx


class RefusedTarget(ValueError):
    """A URL the server will not send to; the message says why, for the person who gave it."""


@dataclass(frozen=True)
class Pinned:
    """A request to a vetted address: its URL names the address, its headers and extensions the host."""

    url: httpx.URL
    headers: dict[str, str]
    extensions: dict[str, str]


def check_url(url: str) -> httpx.URL:
    """The URL, parsed, if its form is one the server sends to (http or https, a host, no
    credentials: an ``Authorization`` value is the place for those); RefusedTarget else."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise RefusedTarget("Use an http or https URL with a host.")
    if parsed.userinfo:
        raise RefusedTarget("Credentials in the URL are not sent: give them as the authorization value instead.")
    if not _is_address(parsed.host) and not _is_host_name(parsed.raw_host.decode("ascii")):
        raise RefusedTarget(f"{parsed.host} is not a host name.")
    return parsed


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_host_name(host: str) -> bool:
    """Whether a resolver could look ``host`` up: labels of 1 to 63 characters, 253 in all (a
    name that breaks these is refused here rather than sent to the resolver)."""
    labels = host.removesuffix(".").split(".")
    return len(host) <= 253 and all(0 < len(label) <= 63 for label in labels)


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is on the public internet: not loopback, private, shared, link-local,
    multicast, reserved or unspecified, however an IPv6 address wraps an IPv4 one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not (address.is_multicast or address.is_reserved)


async def resolve(url: httpx.URL, allow_private: bool) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address to connect to for ``url``: the first its host resolves to that may be
    sent to (any, when private addresses are allowed). RefusedTarget when none may;
    httpx.ConnectError when the name does not resolve."""
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(url.raw_host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpx.ConnectError(f"{url.host} does not resolve: {exc}") from None
    # An IPv6 address's text may carry a scope (fe80::1%eth0), which ip_address takes since 3.9.
    addresses = [ipaddress.ip_address(info[4][0]) for info in found]
    for address in addresses:
        if allow_private or is_public(address):
            return address
    # Which addresses it resolves to is not said: that would make the server a resolver of
    # the operator's internal names for anyone with a key.
    raise RefusedTarget(f"{url.host} is not a public address; the server's operator may allow private networks.")


async def pin(url: str, allow_private: bool) -> Pinned:
    """How to send a request to ``url`` so that it reaches the address that was vetted."""
    parsed = check_url(url)
    address = await resolve(parsed, allow_private)
    return Pinned(
        url=parsed.copy_with(host=str(address)),
        headers={"Host": parsed.netloc.decode("ascii")},
        # TLS: the certificate is checked against the URL's host, not the address.
        extensions={"sni_hostname": parsed.raw_host.decode("ascii")},
    )
