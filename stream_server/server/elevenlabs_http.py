"""ElevenLabs-compatible HTTP text to speech: a thin adapter onto Session (docs/elevenlabs.md, "HTTP").

- `POST /v1/text-to-speech/{voice_id}` and `.../stream`: the audio of `text` in `output_format`
  (elevenlabs_formats.py), streamed as it is synthesized (both routes stream, as ElevenLabs' do).
- `POST .../with-timestamps`: one JSON object, the whole audio in base64 and its characters timed;
  `POST .../stream/with-timestamps`: one such JSON object a line per sentence, as it is synthesized.
  Times are seconds from the start of the response's audio (Pipecat and the SDK read them so).

One request = one session with all its text in (compat.open_for_request). Errors are ElevenLabs'
`{"detail": {"status", "message"}}`.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..config import SPEAKER_SEPARATOR
from .admission import retry_after_headers, try_again_later
from .alignment import word_alignment
from .compat import EventQueue, at_speed, collect_unless_gone, open_for_request, request_pcm, resolve_voice, text_feed
from .elevenlabs_formats import DEFAULT_OUTPUT_FORMAT, HttpFormat, WireEncoder, parse_http_format
from .elevenlabs_ws import voice_speed
from .events import Audio, Done, Error, SentenceEnd, SentenceStart, SessionError, Words, shown
from .send_stall import GuardedStreamingResponse
from .services import Services
from .session import Session
from .session_settings import SessionSettings
from .wire import BodyTooLarge, BodyTooSlow, read_body, text_body
from .word_times import WordTime

Timed = tuple[bytes, dict[str, Any] | None]  # a piece of the response's audio and its characters' times


class Refused(Exception):
    """A request answered with an error before (or instead of) its audio."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def response(self) -> JSONResponse:
        body = {"detail": {"status": self.code, "message": self.message}}
        return JSONResponse(body, self.status, headers=self.headers)


def refusal(exc: SessionError) -> Refused:
    """A session's refusal with ElevenLabs' status: 404 for a voice, 429/503 to try again later."""
    if exc.code in ("unknown_voice", "unknown_speaker"):
        return Refused(404, "voice_not_found", exc.message)
    if try_again_later(exc):
        status = 503 if exc.code == "shutting_down" else 429
        return Refused(status, exc.code, exc.message, retry_after_headers(exc))
    return Refused(400, exc.code, exc.message)


@dataclass(frozen=True)
class TtsRequest:
    text: str
    voice: str
    fmt: HttpFormat
    speed: float | None


async def read_request(request: Request, services: Services) -> TtsRequest:
    """The request's voice, format and body, checked (Refused)."""
    if services.draining:
        raise Refused(503, "shutting_down", "the server is shutting down; try again later")
    try:
        fmt = parse_http_format(request.query_params.get("output_format") or DEFAULT_OUTPUT_FORMAT)
    except SessionError as exc:
        raise Refused(422, exc.code, exc.message) from None
    voice = resolve_voice(services, request.path_params["voice_id"])
    if voice.partition(SPEAKER_SEPARATOR)[0] not in services.voice_rates:
        raise Refused(404, "voice_not_found", f"voice {shown(voice)} was not found; see GET /v2/voices")
    data = parse_body(await _body(request, services))
    limit = services.config.elevenlabs.max_text_chars
    if len(data["text"]) > limit:
        message = f"text of {len(data['text'])} characters exceeds the limit of {limit} (elevenlabs.max_text_chars)"
        raise Refused(400, "max_character_limit_exceeded", message)
    try:
        speed = voice_speed(data)
    except SessionError as exc:
        raise Refused(422, exc.code, exc.message) from None
    return TtsRequest(data["text"], voice, fmt, speed)


async def _body(request: Request, services: Services) -> bytes:
    limit, seconds = services.config.elevenlabs.max_body_bytes, services.config.server.request_timeout_seconds
    try:
        return await read_body(request, limit, seconds)
    except BodyTooLarge:
        raise Refused(413, "request_too_large", f"the request body exceeds {limit} bytes") from None
    except BodyTooSlow:
        message = f"the request body did not arrive within {seconds:g} s (server.request_timeout_seconds)"
        raise Refused(408, "request_timeout", message, {"Connection": "close"}) from None


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON body: an object with a non-blank string `text` (other fields are ignored)."""
    try:
        data, _ = text_body(raw)
    except SessionError as exc:
        code = "invalid_request" if exc.code == "missing_text" else exc.code
        raise Refused(422, code, exc.message) from None
    return data


async def open_request(
    services: Services, req: TtsRequest, events: EventQueue
) -> tuple[Session, contextlib.AsyncExitStack]:
    options = services.default_settings().options
    if req.speed is not None:
        options = at_speed(options, req.speed)
    settings = SessionSettings(req.voice, req.fmt.sample_rate, req.fmt.session_format, options)
    try:
        return await open_for_request(
            services, "elevenlabs", settings, events, text_feed(services, req.text), output_format=req.fmt.name
        )
    except SessionError as exc:  # counted by the session's envelope
        raise refusal(exc) from None


async def encoded(pcm: AsyncGenerator[bytes, None], encoder: WireEncoder) -> AsyncIterator[bytes]:
    """The session's audio in the response's format, as it comes."""
    async with contextlib.aclosing(pcm):  # closing the response closes the session now
        head = encoder.start()
        if head:
            yield head
        async for chunk in pcm:
            out = encoder.encode(chunk)
            if out:
                yield out
        tail = encoder.finish()
        if tail:
            yield tail


class ResponseClock:
    """Sentences' character alignments on one response's clock, in ElevenLabs' HTTP shape. The
    characters of the text between two sentences (a space) lead the later one's, so that the
    characters join back to the text and no client reads "clinic.How" as one word."""

    def __init__(self, text: str, rate: int) -> None:
        self.text, self.rate = text, rate
        self.cursor = 0  # where the next sentence is looked for in the text
        self.samples = 0  # audio before the next sentence

    def _gap(self, sentence: str) -> str:
        found = self.text.find(sentence, self.cursor)
        if found < 0:  # the session's sentence is not the text's as written: one space between
            return " " if self.samples else ""
        gap, self.cursor = self.text[self.cursor : found], found + len(sentence)
        return gap

    def sentence(self, text: str, words: list[WordTime] | None, samples: int) -> dict[str, Any]:
        at = self.samples / self.rate
        gap = self._gap(text)
        ms = word_alignment(text, words, samples, self.rate)
        first = ms["charStartTimesMs"][0] / 1000 if ms["chars"] else 0.0
        starts = [at + first * k / len(gap) for k in range(len(gap))]
        starts += [at + s / 1000 for s in ms["charStartTimesMs"]]
        ends = starts[1 : len(gap)] + [at + first] if gap else []
        ends += [at + (s + d) / 1000 for s, d in zip(ms["charStartTimesMs"], ms["charDurationsMs"])]
        self.samples += samples
        return {
            "characters": list(gap) + ms["chars"],
            "character_start_times_seconds": [round(t, 3) for t in starts],
            "character_end_times_seconds": [round(t, 3) for t in ends],
        }


async def timed(events: EventQueue, stack: contextlib.AsyncExitStack, req: TtsRequest) -> AsyncGenerator[Timed, None]:
    """Each sentence's audio in the format, with its alignment; then LAME's last frames (no
    alignment). A failed sentence ends it with RuntimeError; closing it closes the session."""
    encoder, clock = WireEncoder(req.fmt), ResponseClock(req.text, req.fmt.sample_rate)
    head, text, words, pcm = encoder.start(), "", None, bytearray()
    async with stack:
        while True:
            event = await events.get()
            if isinstance(event, SentenceStart):
                text, words, pcm = event.text, None, bytearray()
            elif isinstance(event, Words):
                words = event.words
            elif isinstance(event, Audio):
                pcm += event.pcm
            elif isinstance(event, SentenceEnd):
                yield head + encoder.encode(bytes(pcm)), clock.sentence(text, words, event.samples)
                head = b""
            elif isinstance(event, Error):
                raise RuntimeError(f"{event.code}: {event.message}")
            elif isinstance(event, Done):
                tail = encoder.finish()
                if tail:
                    yield tail, None
                return


def chunk_json(audio: bytes, alignment: dict[str, Any] | None) -> dict[str, Any]:
    """ElevenLabs' AudioWithTimestampsResponse / StreamingAudioChunkWithTimestampsResponse."""
    return {"audio_base64": base64.b64encode(audio).decode(), "alignment": alignment, "normalized_alignment": alignment}


async def ndjson(chunks: AsyncGenerator[Timed, None]) -> AsyncIterator[bytes]:
    async with contextlib.aclosing(chunks):
        async for audio, alignment in chunks:
            yield json.dumps(chunk_json(audio, alignment)).encode() + b"\n"


def joined(chunks: list[Timed]) -> dict[str, Any]:
    """The whole response's audio and alignment as one object."""
    alignments = [a for _, a in chunks if a is not None]
    alignment = {key: [v for a in alignments for v in a[key]] for key in alignments[0]} if alignments else None
    return chunk_json(b"".join(audio for audio, _ in chunks), alignment)


async def answer(request: Request, with_timestamps: bool, streamed: bool) -> Response:
    services: Services = request.app.state.services
    events = EventQueue()
    try:
        req = await read_request(request, services)
    except Refused as exc:
        services.note_error("elevenlabs", "-", exc.code, exc.message)  # before any session: counted here
        return exc.response()
    try:
        session, stack = await open_request(services, req, events)
    except Refused as exc:
        return exc.response()
    if not with_timestamps:
        return GuardedStreamingResponse(encoded(request_pcm(events, stack), WireEncoder(req.fmt)), session.guard,
                                        req.fmt.media_type)
    if streamed:
        return GuardedStreamingResponse(ndjson(timed(events, stack, req)), session.guard, "application/x-ndjson")
    try:
        chunks = await collect_unless_gone(request, timed(events, stack, req))
    except RuntimeError as exc:
        return Refused(500, "synthesis_failed", str(exc)).response()
    if chunks is None:  # the client left: its session is closed, nothing to answer
        return Response(status_code=499)
    return JSONResponse(joined(chunks))


async def convert(request: Request) -> Response:
    return await answer(request, with_timestamps=False, streamed=True)


async def convert_with_timestamps(request: Request) -> Response:
    return await answer(request, with_timestamps=True, streamed=False)


async def stream_with_timestamps(request: Request) -> Response:
    return await answer(request, with_timestamps=True, streamed=True)
