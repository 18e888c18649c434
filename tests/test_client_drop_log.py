"""A client that leaves while its session is sending is an ordinary end of a session: the
session's sending task (the pump) ends with the disconnect, and asyncio never reports it as
"Task exception was never retrieved" (what 1,000 churned sessions of bench/bench_churn.py logged
before, once per client that closed while a message was on its way)."""

from __future__ import annotations

import asyncio
import gc

from starlette.websockets import WebSocketDisconnect

from stream_server.server.events import Audio
from test_audio_ahead import SENTENCE, Client, SecondSource, make_session


class LeavingClient(Client):
    """Its first audio message finds the connection gone, as Starlette reports it."""

    async def emit(self, event) -> None:
        if isinstance(event, Audio):
            raise WebSocketDisconnect(1006)
        self.events.append(event)


async def test_a_pump_ended_by_a_disconnect_is_not_reported_as_unretrieved():
    loop = asyncio.get_running_loop()
    reported: list[dict] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        session = make_session(SecondSource(), LeavingClient())
        await session.start()
        await session.text(SENTENCE + " " + SENTENCE)
        await session.flush()
        await asyncio.wait_for(asyncio.wait([session._delivery._task]), 10)  # ended by the disconnect
        await session.close()  # what every adapter does when its client is gone
        del session
        gc.collect()  # an unretrieved task exception is reported when the task is collected
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert [c.get("message") for c in reported] == []
