"""Wyoming TTS server (Home Assistant's protocol) on its own TCP port: a thin adapter onto
Session (docs/wyoming.md).

- `describe` -> `info` (one TTS program, our voices (not their aliases, which `synthesize` still
  accepts), streaming supported).
- `synthesize` -> one `audio-start`, `audio-chunk`s, one `audio-stop` for the whole text.
- `synthesize-start`, `synthesize-chunk`s, `synthesize-stop` -> one `audio-start`/`audio-chunk`s/
  `audio-stop` run per sentence as soon as it is synthesized, then `synthesize-stopped`. The
  legacy `synthesize` that clients send inside a streaming run is ignored (as wyoming-piper does).
- Bad input (unknown voice or speaker, empty text, text too long, event data of the wrong shape,
  an event over `wyoming.max_event_bytes`): an `error` event; the connection goes on. Events are
  read here (read_event), not by the wyoming package's reader, which buffers any length a client
  declares.
- A streaming run whose client sends no event for `session.idle_timeout_seconds`, with nothing
  left to send, is ended (idle.py): an `error` event `idle_timeout`, its session closed; the
  connection goes on (a `ping` keeps a quiet run open).
- Optional mDNS announcement, so Home Assistant discovers it (wyoming.zeroconf, --zeroconf):
  wyoming_zeroconf.py.
- A voice is asked for by name (an alias too) and, for a multi-speaker voice, `speaker`; or by
  `language` alone. The protocol has no speed: `synthesis.length_scale` sets it server-wide (as
  wyoming-piper's --length-scale does).

Audio is s16le mono at the voice's native rate (22050 Hz for `joe`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error as WyError
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, TtsProgram, TtsVoice, TtsVoiceSpeaker
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler, AsyncTcpServer
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

from ..config import SPEAKER_SEPARATOR
from .compat import resolve_voice
from .events import Audio, Done, Error, SentenceEnd, SentenceStart, SessionError, SessionEvent, shown
from .idle import idle_error, idle_for
from .services import Services
from .session import Session
from .session_settings import SessionSettings
from .voice_catalog import VoiceInfo, voice_for_language, voice_infos
from .wire import loads_json

if TYPE_CHECKING:
    from .wyoming_zeroconf import WyomingAnnouncer  # zeroconf is only imported when asked for

log = logging.getLogger(__name__)
_T = TypeVar("_T")

WIDTH, CHANNELS = 2, 1  # s16le mono
LANGUAGES = ["en_US"]  # every voice we ship speaks US English (espeak-ng en-us phonemes)
_ATTRIBUTION = Attribution(name="stream_server", url="https://github.com/rhasspy/piper")


def _version() -> str:
    try:
        return importlib.metadata.version("stream_server")
    except importlib.metadata.PackageNotFoundError:
        return "0"


_DISCARD_PIECE = 64 << 10  # an oversized event is skipped in pieces this big, never held whole


def _length(header: dict[str, Any], name: str) -> int:
    value = header.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SessionError("invalid_event", f"{name} must be a whole number of bytes")
    return value


async def read_event(reader: asyncio.StreamReader, max_bytes: int) -> Event | None:
    """The next event (None: the client is gone), or SessionError for one the connection can go
    on after: a bad header line, bad data, or data + payload over `max_bytes` (skipped unread)."""
    try:
        line = await reader.readline()
    except ValueError:  # longer than the reader's line limit (64 KiB): the rest is a bad line too
        raise SessionError("invalid_event", "an event header line is too long") from None
    if not line:
        return None
    try:
        header = loads_json(line)
    except ValueError:
        raise SessionError("invalid_event", "an event header must be one line of JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise SessionError("invalid_event", 'an event header must be a JSON object with a string "type"')
    data_length, payload_length = _length(header, "data_length"), _length(header, "payload_length")
    try:
        if data_length + payload_length > max_bytes:
            left = data_length + payload_length
            while left:
                left -= len(await reader.readexactly(min(left, _DISCARD_PIECE)))
            raise SessionError(
                "event_too_large",
                f"an event of {data_length + payload_length} bytes exceeds the limit of {max_bytes} "
                "(wyoming.max_event_bytes)",
            )
        data = header.get("data", {})
        extra = await reader.readexactly(data_length) if data_length else b""
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        return None
    if extra:
        try:
            more = loads_json(extra)
        except ValueError:
            raise SessionError("invalid_event", "event data must be JSON") from None
        if not isinstance(more, dict) or not isinstance(data, dict):
            raise SessionError("invalid_event", "event data must be a JSON object")
        data = {**data, **more}
    if not isinstance(data, dict):
        raise SessionError("invalid_event", "event data must be a JSON object")
    return Event(header["type"], data, payload)


def _text(event: Event) -> str:
    text = event.data.get("text")
    if not isinstance(text, str):
        raise SessionError("invalid_event", f'{shown(event.type, 40)} needs a string "text"')
    return text


def _voice(event: Event) -> SynthesizeVoice | None:
    """data.voice: {name?, language?, speaker?}, each a string when given (None: the default)."""
    voice = event.data.get("voice")
    if voice is None:
        return None
    fields = {k: voice.get(k) for k in ("name", "language", "speaker")} if isinstance(voice, dict) else None
    if fields is None or any(v is not None and not isinstance(v, str) for v in fields.values()):
        raise SessionError("invalid_event", '"voice" must be an object of strings: name, language, speaker')
    return SynthesizeVoice(**fields)


class _Run:
    """One synthesis (a `synthesize`, or a streaming run): its session and how events map."""

    session: Session  # set by WyomingTtsHandler._open, before any use

    def __init__(self, handler: WyomingTtsHandler, per_sentence: bool) -> None:
        self.handler = handler
        self.per_sentence = per_sentence
        self.stack = contextlib.AsyncExitStack()  # holds the session's envelope open
        self.rate = 0
        self.audio_open = False
        self.sent_any = False

    async def emit(self, event: SessionEvent) -> None:
        h = self.handler
        if isinstance(event, SentenceStart):
            if self.per_sentence or not self.audio_open:
                await self._start_audio()
        elif isinstance(event, Audio):
            await h.write(AudioChunk(self.rate, WIDTH, CHANNELS, event.pcm).event())
        elif isinstance(event, SentenceEnd):
            if self.per_sentence:
                await self._stop_audio()
        elif isinstance(event, Error):
            if event.context_id is not None:  # a sentence failed: its audio ends here
                await self._stop_audio()
            await h.error(event.code, event.message)
        elif isinstance(event, Done) and not self.per_sentence:
            await self._stop_audio()

    async def text(self, text: str) -> None:
        """Text for the run's session; bad text is reported like any session error."""
        try:
            await self.session.text(text)
        except SessionError as exc:
            await self.session.report(exc)

    async def _start_audio(self) -> None:
        self.audio_open = self.sent_any = True
        await self.handler.write(AudioStart(self.rate, WIDTH, CHANNELS).event())

    async def _stop_audio(self) -> None:
        if self.audio_open:
            self.audio_open = False
            await self.handler.write(AudioStop().event())


class WyomingTtsHandler(AsyncEventHandler):
    def __init__(self, services: Services, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(reader, writer)
        self.services = services
        self._lock = asyncio.Lock()
        self._stream: _Run | None = None  # the streaming run in progress
        self._streaming = False  # between synthesize-start and synthesize-stop

    # --- writing --------------------------------------------------------------------------
    async def write(self, event: Event) -> None:
        async with self._lock:
            await self.write_event(event)

    async def error(self, code: str, message: str) -> None:
        """Put an error on the wire (it was counted where it arose: the session envelope, or
        `_refuse` for requests that never got a session)."""
        await self.write(WyError(text=message, code=code).event())

    # --- events ---------------------------------------------------------------------------
    async def run(self) -> None:
        """The wyoming package's loop, with our bounded reader: a bad event is answered with an
        error event and the connection goes on; a streaming run gone quiet is ended (idle.py)."""
        self._is_running = True
        limit = self.services.config.wyoming.max_event_bytes
        reading: asyncio.Future[Event | None] | None = None
        last_event = time.monotonic()
        try:
            while self._is_running:
                if reading is None:
                    reading = asyncio.ensure_future(read_event(self.reader, limit))
                await asyncio.wait({reading}, timeout=self._idle_wait(last_event))
                if not reading.done():  # (the read goes on: a timeout never cuts an event in two)
                    await self._end_if_idle(last_event)
                    continue
                done, reading, last_event = reading, None, time.monotonic()
                try:
                    event = done.result()
                except SessionError as exc:
                    self.services.note_error("wyoming", "-", exc.code, exc.message)
                    try:
                        await self.error(exc.code, exc.message)
                    except ConnectionError:
                        break
                    continue
                if event is None or not await self.handle_event(event):
                    break
        finally:
            if reading is not None:
                reading.cancel()
            await self.disconnect()
            self.writer.close()

    def _idle_wait(self, last_event: float) -> float | None:
        """How long to wait for the next event before looking whether the streaming run has gone
        quiet (None: no run, or no idle timeout)."""
        idle_timeout = self.services.config.session.idle_timeout_seconds
        if self._stream is None or idle_timeout <= 0:
            return None
        return max(idle_for(self._stream.session, last_event, idle_timeout), 0.25)

    async def _end_if_idle(self, last_event: float) -> None:
        run = self._stream
        idle_timeout = self.services.config.session.idle_timeout_seconds
        if run is None or idle_for(run.session, last_event, idle_timeout) > 0 or not run.session.is_idle():
            return
        error = idle_error(idle_timeout, "a ping")
        self.services.note_error("wyoming", run.session.session_id, error.code, error.message)
        await self._close_stream()
        self._streaming = False
        with contextlib.suppress(ConnectionError):
            await self.error(error.code, error.message)

    async def handle_event(self, event: Event) -> bool:
        try:
            await self._handle(event)
        except SessionError as exc:  # a refusal, counted by the envelope (or `_refuse`)
            await self.error(exc.code, exc.message)
        except (ConnectionError, asyncio.IncompleteReadError):
            return False
        return True

    async def _handle(self, event: Event) -> None:
        if Describe.is_type(event.type):
            await self.write(self._info().event())
        elif Ping.is_type(event.type):
            await self.write(Pong(text=Ping.from_event(event).text).event())
        elif SynthesizeStart.is_type(event.type):
            await self._close_stream()
            self._streaming = True
            run = _Run(self, per_sentence=True)
            await self._open(run, self._checked(_voice, event))  # a bad voice: no stream then
            self._stream = run
        elif SynthesizeChunk.is_type(event.type):
            text = self._checked(_text, event)
            if self._stream is not None:
                await self._stream.text(text)
        elif SynthesizeStop.is_type(event.type):
            stream, self._stream, self._streaming = self._stream, None, False
            if stream is not None:
                await stream.session.end()
                await stream.session.wait_done()
                await self._drop(stream)
            await self.write(SynthesizeStopped().event())
        elif Synthesize.is_type(event.type):
            if self._streaming:
                return  # the legacy copy of a streaming run's text
            await self._synthesize(self._checked(_text, event), self._checked(_voice, event))
        else:
            log.debug("wyoming: ignoring event %s", shown(event.type))

    def _checked(self, read: Callable[[Event], _T], event: Event) -> _T:
        """A field of the event's data, or the refusal counted (it never gets a session)."""
        try:
            return read(event)
        except SessionError as exc:
            self._refuse(exc)

    async def _synthesize(self, text: str, voice: SynthesizeVoice | None) -> None:
        if not text.strip():
            self._refuse(SessionError("empty_text", "text must not be empty"))
        run = _Run(self, per_sentence=False)
        await self._open(run, voice)
        try:
            await run.text(text)
            await run.session.end()
            await run.session.wait_done()
        finally:
            await self._drop(run)

    def _refuse(self, error: SessionError) -> NoReturn:
        self.services.note_error("wyoming", "-", error.code, error.message)
        raise error

    async def _open(self, run: _Run, voice: SynthesizeVoice | None) -> None:
        services = self.services
        name = self._voice_name(voice)
        run.rate = services.voice_rates.get(name.partition(SPEAKER_SEPARATOR)[0], 0)
        defaults = services.default_settings()
        settings = SessionSettings(name, run.rate or defaults.sample_rate, "pcm_s16le", defaults.options)
        envelope = services.open_session(
            "wyoming", settings, run.emit, lambda code: self.stop(), streaming=run.per_sentence
        )
        run.session = await run.stack.enter_async_context(envelope)
        run.stack.callback(self._drop_on_stall(run.session).cancel)

    def _drop_on_stall(self, session: Session) -> asyncio.Task[None]:
        """A client that stopped reading (its session dropped its work): Wyoming has no close code,
        so the connection is dropped, with the audio it did not read."""
        async def watch() -> None:
            await session.stalled.wait()
            log.info("wyoming: dropping a connection whose client stopped reading")
            self.writer.transport.abort()

        return asyncio.ensure_future(watch())

    def _voice_name(self, voice: SynthesizeVoice | None) -> str:
        """The session's voice for a request's {name, speaker} or {language} (none: the default)."""
        services = self.services
        if voice is not None and voice.name is None and voice.language:
            return voice_for_language(services, voice.language)
        name = resolve_voice(services, voice.name if voice is not None else None)
        if voice is not None and voice.speaker:
            name = f"{name}{SPEAKER_SEPARATOR}{voice.speaker}"  # the session checks the speaker
        return name

    async def _drop(self, run: _Run) -> None:
        await run.stack.aclose()

    async def _close_stream(self) -> None:
        run, self._stream = self._stream, None
        if run is not None:
            await self._drop(run)

    async def disconnect(self) -> None:
        await self._close_stream()

    def _info(self) -> Info:
        services = self.services
        # real voices only: a picker (Home Assistant's) would show each alias as one more voice
        voices = [_tts_voice(info) for info in voice_infos(services)]
        program = TtsProgram(
            name="stream_server", attribution=_ATTRIBUTION, installed=True,
            description="stream_server streaming TTS", version=_version(), voices=voices,
            supports_synthesize_streaming=True,
        )
        return Info(tts=[program])


def _tts_voice(info: VoiceInfo) -> TtsVoice:
    return TtsVoice(
        name=info.name, attribution=_ATTRIBUTION, installed=True, version=None, description=info.describe(),
        languages=[info.language] if info.language else [],
        speakers=[TtsVoiceSpeaker(name=s) for s in info.speakers] or None,
    )


class WyomingServer:
    def __init__(self, services: Services, host: str, port: int) -> None:
        self.services = services
        self.host, self.port = host, port
        self._server = AsyncTcpServer(host, port)
        self.announcer: WyomingAnnouncer | None = None  # a WyomingAnnouncer while wyoming.zeroconf has it announced

    async def start(self) -> None:
        await self._server.start(partial(WyomingTtsHandler, self.services))
        log.info("wyoming TTS server on tcp://%s:%d", self.host, self.port)
        cfg = self.services.config.wyoming
        if cfg.zeroconf:
            await self._announce(cfg.zeroconf_name)

    async def _announce(self, name: str) -> None:
        from .wyoming_zeroconf import WyomingAnnouncer  # zeroconf is only imported when asked for

        announcer = WyomingAnnouncer(name, self.host, self.port)
        try:
            await announcer.start()
        except Exception as exc:  # noqa: BLE001 - discovery is a convenience: the server still serves
            log.warning("wyoming: could not announce over mDNS (%s: %s); add it in Home Assistant by "
                        "host and port instead", type(exc).__name__, exc)
        else:
            self.announcer = announcer

    async def stop(self) -> None:
        if self.announcer is not None:
            announcer, self.announcer = self.announcer, None
            await announcer.stop()
        await self._server.stop()

    def __repr__(self) -> str:
        return f"WyomingServer(tcp://{self.host}:{self.port})"
