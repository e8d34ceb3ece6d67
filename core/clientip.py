"""The address of the client a request came from, the one rate limits count.

Behind reverse proxies ``REMOTE_ADDR`` is the nearest proxy's address, so every patient would share one
budget. ``TRUSTED_PROXIES`` lists the proxies' addresses or networks; the client is the right-most address in
``REMOTE_ADDR`` + ``X-Forwarded-For`` that is not one of them. Addresses a client wrote into the header itself
sit to the left of the first untrusted hop and are never believed. With no trusted proxies (the default), the
header is ignored and ``REMOTE_ADDR`` counts.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def proxy_networks_parse(values: list[str]) -> tuple[Network, ...]:
    """Parse addresses and networks (``10.0.0.5``, ``10.0.0.0/8``, ``::1``); ``ValueError`` on a bad one.

    >>> proxy_networks_parse(["10.0.0.0/8", "127.0.0.1"])
    (IPv4Network('10.0.0.0/8'), IPv4Network('127.0.0.1/32'))
    """
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


@lru_cache(maxsize=8)
def _networks(values: tuple[str, ...]) -> tuple[Network, ...]:
    return proxy_networks_parse(list(values))


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: ``REMOTE_ADDR``, or behind trusted proxies the first untrusted hop before them.

    Walks the chain from the nearest hop backwards and stops at the first address that is not a trusted
    proxy; if every hop is trusted, the left-most one counts. A malformed hop ends the walk at the last good
    address, so a forged header can never pick an address of the client's choosing.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    networks = _networks(tuple(settings.TRUSTED_PROXIES))
    if remote is None or not networks or not _trusted(remote, networks):
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    client = remote
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break
        client = hop
        if not _trusted(hop, networks):
            break
    return client
