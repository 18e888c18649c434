"""Requests that come slowly are not held without end (docs/limits.md): a request's head (its line
and headers) must arrive within `server.request_timeout_seconds`, counted from the connection (or,
on a kept-alive connection, from the next request's first byte), and its body within as long again
(wire.read_body). Past either, the client gets HTTP 408 and the connection is closed.

uvicorn bounds the idle time between requests (`timeout_keep_alive`) but not the head: a client
that connects and sends nothing, or a header a byte at a time, held its connection for as long as
it liked. The head's deadline is a small subclass of uvicorn's httptools protocol (uvicorn[standard]
installs httptools), given to uvicorn as its `http` protocol (cli.uvicorn_options)."""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

TIMEOUT_MESSAGE = b"request timeout: the request's head did not arrive in time (server.request_timeout_seconds)"


class HeadDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's protocol, with a deadline on each request's head (`head_timeout` seconds)."""

    head_timeout: float = 20.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()  # the next request on a kept-alive connection: from its first byte

    def on_headers_complete(self) -> None:
        self._disarm()  # (a WebSocket upgrade too: the handshake's head is complete)
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # a pipelined head behind a response still going: close after it
            return
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
            b"content-length: " + str(len(TIMEOUT_MESSAGE)).encode() + b"\r\n\r\n" + TIMEOUT_MESSAGE
        )
        self.transport.close()


def head_deadline_protocol(seconds: float) -> type[HeadDeadlineProtocol]:
    """The protocol class for uvicorn's `http` option, with this deadline."""
    return type("HeadDeadlineProtocol", (HeadDeadlineProtocol,), {"head_timeout": seconds})
