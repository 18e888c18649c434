"""The Wyoming server's mDNS announcement (wyoming.zeroconf, --zeroconf), found as Home Assistant
finds it: the zeroconf library's own ServiceBrowser and ServiceInfo, here on loopback only (the
announcer binds to the Wyoming host's interface, 127.0.0.1 in every test: nothing leaves this
machine). Needs multicast on the loopback interface, which Linux has by default."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from types import SimpleNamespace

import pytest
from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf

from background import free_port
from stream_server.cli import _parser, settings
from stream_server.config import AppConfig
from stream_server.server.wyoming_zeroconf import SERVICE_TYPE, WyomingAnnouncer, announced_address

LOOPBACK = "127.0.0.1"
NO_MULTICAST = "nothing was announced on loopback: this test needs multicast on the lo interface"


class Browser:
    """A ServiceBrowser for _wyoming._tcp on loopback, recording what is added and removed."""

    def __init__(self) -> None:
        self.zeroconf = Zeroconf(interfaces=[LOOPBACK], ip_version=IPVersion.V4Only)
        self.added: dict[str, threading.Event] = {}
        self.removed: set[str] = set()
        self._lock = threading.Lock()
        self.browser = ServiceBrowser(self.zeroconf, SERVICE_TYPE, handlers=[self._on_change])

    def _on_change(self, zeroconf, service_type, name, state_change) -> None:
        with self._lock:
            if state_change is ServiceStateChange.Added:
                self.added.setdefault(name, threading.Event()).set()
            elif state_change is ServiceStateChange.Removed:
                self.removed.add(name)

    def wait_for(self, name: str, timeout: float = 10.0):
        """The resolved ServiceInfo of `name` (as Home Assistant asks for it), once browsed."""
        deadline = time.monotonic() + timeout
        while name not in self.added and time.monotonic() < deadline:
            time.sleep(0.05)
        assert name in self.added, f"{name} not browsed; saw {sorted(self.added)}. {NO_MULTICAST}"
        info = self.zeroconf.get_service_info(SERVICE_TYPE, name, timeout=3000)
        assert info is not None, f"{name} was browsed but does not resolve"
        return info

    def wait_removed(self, name: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while name not in self.removed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert name in self.removed, f"{name} was not withdrawn"

    def close(self) -> None:
        self.browser.cancel()
        self.zeroconf.close()


@pytest.fixture
def browser():
    b = Browser()
    yield b
    b.close()


async def test_announced_service_is_browsed_resolved_and_withdrawn(browser):
    port = free_port()
    announcer = WyomingAnnouncer("zc-test-one", LOOPBACK, port)
    await announcer.start()
    try:
        name = f"zc-test-one.{SERVICE_TYPE}"
        assert announcer.info.name == name
        info = await asyncio.to_thread(browser.wait_for, name)
        assert info.type == SERVICE_TYPE and info.port == port
        assert info.parsed_addresses() == [LOOPBACK]
    finally:
        await announcer.stop()
    await asyncio.to_thread(browser.wait_removed, name)  # the goodbye: gone at once, not at TTL


async def test_a_name_already_announced_gets_another(browser):
    first, second = (WyomingAnnouncer("zc-test-twin", LOOPBACK, free_port()) for _ in range(2))
    await first.start()
    try:
        await second.start()
        try:
            assert second.info.name != first.info.name and second.info.name.endswith(SERVICE_TYPE)
            for announcer in (first, second):
                info = await asyncio.to_thread(browser.wait_for, announcer.info.name)
                assert info.port == announcer.port
        finally:
            await second.stop()
    finally:
        await first.stop()


def test_the_announced_address_for_each_kind_of_host():
    assert str(announced_address("127.0.0.1")) == "127.0.0.1"
    assert str(announced_address("192.0.2.7")) == "192.0.2.7"
    assert announced_address("localhost").is_loopback
    # a wildcard: the address the route toward the mDNS group leaves by (no packet is sent)
    assert announced_address("0.0.0.0").version == 4


async def test_the_wyoming_server_announces_only_when_asked(browser, caplog):
    """WyomingServer with wyoming.zeroconf on: browsed, resolved, then described over the announced
    address and port by the wyoming package's client (what Home Assistant does next); off: no
    announcer at all."""
    from wyoming.client import AsyncTcpClient
    from wyoming.info import Describe, Info

    from stream_server.server.wyoming_tts import WyomingServer

    config = AppConfig()
    config.wyoming.zeroconf, config.wyoming.zeroconf_name = True, "zc-test-server"
    services = _describable_services(config)
    server = WyomingServer(services, LOOPBACK, free_port())
    caplog.set_level(logging.INFO, "stream_server")
    await server.start()
    try:
        info = await asyncio.to_thread(browser.wait_for, f"zc-test-server.{SERVICE_TYPE}")
        async with AsyncTcpClient(info.parsed_addresses()[0], info.port) as client:
            await client.write_event(Describe().event())
            answer = await asyncio.wait_for(client.read_event(), 10)
        assert Info.is_type(answer.type) and Info.from_event(answer).tts[0].name == "stream_server"
        assert "announced over mDNS" in caplog.text and "loopback only" in caplog.text
    finally:
        await server.stop()

    config.wyoming.zeroconf = False
    quiet = WyomingServer(_describable_services(config), LOOPBACK, free_port())
    await quiet.start()
    try:
        assert quiet.announcer is None
    finally:
        await quiet.stop()


async def test_an_announcement_that_fails_leaves_the_server_serving(monkeypatch, caplog):
    from stream_server.server import wyoming_zeroconf
    from stream_server.server.wyoming_tts import WyomingServer

    async def no_multicast(self):
        raise OSError(19, "No such device")

    monkeypatch.setattr(wyoming_zeroconf.WyomingAnnouncer, "start", no_multicast)
    config = AppConfig()
    config.wyoming.zeroconf = True
    port = free_port()
    server = WyomingServer(_describable_services(config), LOOPBACK, port)
    await server.start()
    try:
        assert server.announcer is None and "could not announce over mDNS" in caplog.text
        _, writer = await asyncio.open_connection(LOOPBACK, port)  # still listening
        writer.close()
    finally:
        await server.stop()


def test_cli_flag_and_config():
    assert AppConfig().wyoming.zeroconf is False  # opt-in: it advertises an unauthenticated port
    parse = _parser().parse_args
    assert settings(parse(["serve"]), environ={}).wyoming.zeroconf is False
    on = settings(parse(["serve", "--zeroconf"]), environ={}).wyoming
    assert on.zeroconf and on.zeroconf_name == "stream_server"
    named = settings(parse(["serve", "--zeroconf", "kitchen"]), environ={}).wyoming
    assert named.zeroconf and named.zeroconf_name == "kitchen"
    env = settings(parse(["serve"]), environ={"STREAM_SERVER_WYOMING__ZEROCONF": "true"}).wyoming
    assert env.zeroconf


def _describable_services(config: AppConfig):
    """Just enough of Services for `describe`: one stand-in voice, no engine, nothing loaded."""
    config.voice_aliases = {}
    voice = SimpleNamespace(kind="ar", sample_rate=22050, language="en_US", speakers=[], espeak_voice="en-us",
                            control=None)
    return SimpleNamespace(config=config, voices={"joe_ar": voice}, voice_rates={"joe_ar": 22050},
                           note_error=lambda *a: None)
