"""Announce the Wyoming server over mDNS (zeroconf), so Home Assistant finds it by itself (it
shows up under Settings > Devices & services as discovered), as wyoming-piper's --zeroconf does.

Off by default (wyoming.zeroconf, --zeroconf): an announcement tells the whole local network about
a port that has no authentication. The service is `<wyoming.zeroconf_name>._wyoming._tcp.local.`
at the Wyoming server's port, with one address:
- a specific host (wyoming.host: 192.168.1.5): that address, announced on that interface only;
- a wildcard (0.0.0.0, ::): the address of the interface the default route leaves by, announced
  on every interface;
- a loopback host: announced on loopback only, which only this machine hears (a warning says so).
Trouble announcing (no multicast, say) is logged; the Wyoming server keeps serving. A name that
another server already announces gets a suffix (zeroconf's "name (2)").
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from typing import Any, cast

from zeroconf import InterfaceChoice, IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

log = logging.getLogger(__name__)

SERVICE_TYPE = "_wyoming._tcp.local."
_MDNS_GROUP = "224.0.0.251"
_WILDCARDS = {"", "0.0.0.0", "::"}


def _route_address() -> str:
    """This machine's address toward the mDNS group: connecting a UDP socket picks the route and
    sends nothing."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((_MDNS_GROUP, 5353))
            address: str = probe.getsockname()[0]
            return address
        except OSError:  # no route at all: nothing but loopback to announce on
            return "127.0.0.1"


def announced_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address clients are told to connect to, for the Wyoming server's bind address."""
    if host in _WILDCARDS:
        return ipaddress.ip_address(_route_address())
    try:
        return ipaddress.ip_address(host)
    except ValueError:  # a host name (localhost, myhost.lan): what it resolves to
        return ipaddress.ip_address(socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][4][0])


class WyomingAnnouncer:
    """One registered `_wyoming._tcp` service, from start() to stop()."""

    def __init__(self, name: str, host: str, port: int) -> None:
        self.name, self.host, self.port = name, host, port
        self.info: AsyncServiceInfo | None = None
        self._zeroconf: AsyncZeroconf | None = None
        self._broadcast: asyncio.Future[Any] | None = None

    async def start(self) -> None:
        address = announced_address(self.host)
        interfaces: InterfaceChoice | list[str]
        if self.host in _WILDCARDS or address.version == 6:
            interfaces = InterfaceChoice.All  # zeroconf names IPv6 interfaces otherwise (index, scope)
        else:
            interfaces = [str(address)]  # the one interface the server listens on
        version = IPVersion.V6Only if address.version == 6 else IPVersion.V4Only
        self._zeroconf = AsyncZeroconf(interfaces=interfaces, ip_version=version)
        info = AsyncServiceInfo(
            SERVICE_TYPE, f"{self.name}.{SERVICE_TYPE}", port=self.port, parsed_addresses=[str(address)]
        )
        try:
            # waits for the probe (is the name free?); the announcements go on in the background
            broadcast = await self._zeroconf.async_register_service(info, allow_name_change=True)
            self._broadcast = cast("asyncio.Future[Any]", broadcast)  # its task, typed as an Awaitable
        except BaseException:
            await self._zeroconf.async_close()
            self._zeroconf = None
            raise
        self.info = info  # its name has the suffix if one was needed
        log.info("wyoming: announced over mDNS as %r at %s:%d", info.name, address, self.port)
        if address.is_loopback:
            log.warning(
                "wyoming: the announcement is on loopback only (wyoming.host is %s): Home Assistant on "
                "another machine will not see it; bind wyoming.host to this machine's LAN address or "
                "0.0.0.0", self.host,
            )

    async def stop(self) -> None:
        if self._zeroconf is None:
            return
        zeroconf, self._zeroconf = self._zeroconf, None
        if self._broadcast is not None and not self._broadcast.done():
            self._broadcast.cancel()
        try:
            await zeroconf.async_unregister_all_services()  # a goodbye: browsers drop it now
        finally:
            await zeroconf.async_close()
