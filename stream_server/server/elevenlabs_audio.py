"""What both ElevenLabs sockets send: a session's sentences as audio messages in the asked
`output_format` (elevenlabs_formats.py), one per engine chunk, each with the alignment of the
characters that start in it (docs/elevenlabs.md).

The session always produces s16le PCM at the format's rate; it goes out as it is (`pcm_*`), as
G.711 mu-law (`ulaw_8000`) or as mp3 (`mp3_<rate>_<kbps>`). An mp3 stream runs on over a context's
sentences (no encoder padding between them) and is flushed when the client flushes, when a context
ends and at the end of input, so the client gets its last frames then.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from ..audio.encoders import Mp3Chunks
from ..audio.formats import mulaw_encode
from .alignment import ChunkAligner
from .elevenlabs_formats import OutputFormat
from .events import Audio, SentenceEnd, SentenceStart, Words
from .word_times import WordTime


@dataclass
class _Sentence:
    context_id: str
    text: str  # as the alignment shows it
    words: list[WordTime] | None = None
    aligner: ChunkAligner | None = None  # made with its first chunk (the words come before it)
    samples: int = 0  # sent so far


@dataclass
class AudioMessages:
    """A socket's session events -> ElevenLabs audio messages (dicts, without contextId). Holds the
    sentence being sent and an mp3 stream per context that has one unflushed (at most the
    session's contexts: `drop` forgets a context's)."""

    fmt: OutputFormat
    _sentence: _Sentence | None = None
    _mp3: dict[str, Mp3Chunks] = field(default_factory=dict)

    def start(self, event: SentenceStart) -> None:
        """A sentence after the first of its context starts with the space that separates them,
        as ElevenLabs' alignment has it (clients join the characters into words)."""
        text = event.text if event.index == 0 or event.text[:1].isspace() else " " + event.text
        self._sentence = _Sentence(event.context_id, text)

    def words(self, event: Words) -> None:
        if self._sentence is not None:
            self._sentence.words = event.words

    def audio(self, event: Audio) -> dict[str, Any] | None:
        """The chunk's message: its audio and the characters that start in it."""
        s = self._sentence
        if s is None or s.context_id != event.context_id:
            return None
        if s.aligner is None:
            s.aligner = ChunkAligner(s.text, s.words)
        start = s.samples
        s.samples += len(event.pcm) // 2
        rate = self.fmt.sample_rate
        alignment = s.aligner.take(1000.0 * start / rate, 1000.0 * s.samples / rate, event.last)
        return _message(self._encode(event.context_id, event.pcm), alignment)

    def end(self, event: SentenceEnd) -> dict[str, Any] | None:
        """Characters its chunks left (none unless its last chunk had no audio)."""
        s, self._sentence = self._sentence, None
        if s is None or s.aligner is None or s.context_id != event.context_id:
            return None
        ms = 1000.0 * s.samples / self.fmt.sample_rate
        alignment = s.aligner.take(ms, ms, True)
        return None if alignment is None else _message(b"", alignment)

    def tail(self, context_id: str) -> dict[str, Any] | None:
        """The context's last mp3 frames, if it has any held back."""
        mp3 = self._mp3.pop(context_id, None)
        rest = b"" if mp3 is None else mp3.flush()
        return _message(rest, None) if rest else None

    def drop(self, context_id: str) -> None:
        """The context was cancelled: nothing more of it goes out."""
        self._mp3.pop(context_id, None)
        if self._sentence is not None and self._sentence.context_id == context_id:
            self._sentence = None

    def _encode(self, context_id: str, pcm: bytes) -> bytes:
        if self.fmt.codec == "ulaw":
            return mulaw_encode(pcm)
        if self.fmt.codec == "mp3":
            mp3 = self._mp3.get(context_id)
            if mp3 is None:
                mp3 = self._mp3[context_id] = Mp3Chunks(self.fmt.sample_rate, self.fmt.kbps)
            return mp3.encode(pcm)
        return pcm


def _message(audio: bytes, alignment: dict[str, Any] | None) -> dict[str, Any]:
    return {"audio": base64.b64encode(audio).decode(), "isFinal": None,
            "normalizedAlignment": alignment, "alignment": alignment}
