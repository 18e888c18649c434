"""Wyoming TTS server (Home Assistant's protocol) on its own TCP port: a thin adapter onto
Session (docs/wyoming.md).

- `describe` -> `info` (one TTS program, our voices and their aliases, streaming supported).
- `synthesize` -> one `audio-start`, `audio-chunk`s, one `audio-stop` for the whole text.
- `synthesize-start`, `synthesize-chunk`s, `synthesize-stop` -> one `audio-start`/`audio-chunk`s/
  `audio-stop` run per sentence as soon as it is synthesized, then `synthesize-stopped`. The
  legacy `synthesize` that clients send inside a streaming run is ignored (as wyoming-piper does).
- Bad input (unknown voice or speaker, empty text, text too long): an `error` event; the
  connection goes on.
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
from functools import partial

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
from .events import Audio, Done, Error, SentenceEnd, SentenceStart, SessionError, SessionEvent
from .services import Services
from .session import Session, SessionSettings
from .voice_catalog import VoiceInfo, voice_for_language, voice_infos

log = logging.getLogger(__name__)

WIDTH, CHANNELS = 2, 1  # s16le mono
_ATTRIBUTION = Attribution(name="stream_server", url="https://github.com/rhasspy/piper")


def _version() -> str:
    try:
        return importlib.metadata.version("stream_server")
    except importlib.metadata.PackageNotFoundError:
        return "0"


class _Run:
    """One synthesis (a `synthesize`, or a streaming run): its session and how events map."""

    def __init__(self, handler: "WyomingTtsHandler", per_sentence: bool) -> None:
        self.handler = handler
        self.per_sentence = per_sentence
        self.session: Session | None = None
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
    def __init__(self, services: Services, reader, writer) -> None:
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
            start = SynthesizeStart.from_event(event)
            run = _Run(self, per_sentence=True)
            await self._open(run, start.voice)  # raises on a bad voice: no stream then
            self._stream = run
        elif SynthesizeChunk.is_type(event.type):
            if self._stream is not None:
                await self._stream.text(SynthesizeChunk.from_event(event).text)
        elif SynthesizeStop.is_type(event.type):
            run, self._stream, self._streaming = self._stream, None, False
            if run is not None:
                await run.session.end()
                await run.session.wait_done()
                await self._drop(run)
            await self.write(SynthesizeStopped().event())
        elif Synthesize.is_type(event.type):
            if self._streaming:
                return  # the legacy copy of a streaming run's text
            await self._synthesize(Synthesize.from_event(event))
        else:
            log.debug("wyoming: ignoring event %s", event.type)

    async def _synthesize(self, request: Synthesize) -> None:
        if not request.text.strip():
            self._refuse(SessionError("empty_text", "text must not be empty"))
        run = _Run(self, per_sentence=False)
        await self._open(run, request.voice)
        try:
            await run.text(request.text)
            await run.session.end()
            await run.session.wait_done()
        finally:
            await self._drop(run)

    def _refuse(self, error: SessionError) -> None:
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
        infos = {info.name: info for info in voice_infos(services)}
        voices = [_tts_voice(info.name, info, f"{info.name} ({info.sample_rate} Hz)") for info in infos.values()]
        voices += [
            _tts_voice(alias, infos[target], f"alias of {target}")
            for alias, target in services.config.voice_aliases.items()
        ]
        program = TtsProgram(
            name="stream_server", attribution=_ATTRIBUTION, installed=True,
            description="stream_server streaming TTS", version=_version(), voices=voices,
            supports_synthesize_streaming=True,
        )
        return Info(tts=[program])


def _tts_voice(name: str, info: VoiceInfo, description: str) -> TtsVoice:
    return TtsVoice(
        name=name, attribution=_ATTRIBUTION, installed=True, version=None, description=description,
        languages=[info.language] if info.language else [],
        speakers=[TtsVoiceSpeaker(name=s) for s in info.speakers] or None,
    )


class WyomingServer:
    def __init__(self, services: Services, host: str, port: int) -> None:
        self.services = services
        self.host, self.port = host, port
        self._server = AsyncTcpServer(host, port)

    async def start(self) -> None:
        await self._server.start(partial(WyomingTtsHandler, self.services))
        log.info("wyoming TTS server on tcp://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        await self._server.stop()

    def __repr__(self) -> str:
        return f"WyomingServer(tcp://{self.host}:{self.port})"
