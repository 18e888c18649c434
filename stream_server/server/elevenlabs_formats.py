"""ElevenLabs' `output_format`s, for its sockets (elevenlabs_audio.py) and its HTTP routes
(elevenlabs_http.py): what the session is asked for and how its PCM becomes the bytes sent.

The sockets take `pcm_<rate>`, `ulaw_8000` and ElevenLabs' mp3 ones, `mp3_<rate>_<kbps>` (the
session resamples to the mp3's rate, LAME encodes); the HTTP routes also `wav_<rate>` (a streamed
WAV: its header, then the PCM). Opus and A-law are not served.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..audio.encoders import Mp3Chunks
from ..audio.formats import SAMPLE_RATES, wav_header
from .events import SessionError, shown

MP3_FORMATS = {  # ElevenLabs' mp3 formats: name -> (sample rate, kbit/s)
    "mp3_22050_32": (22050, 32), "mp3_24000_48": (24000, 48), "mp3_44100_32": (44100, 32),
    "mp3_44100_64": (44100, 64), "mp3_44100_96": (44100, 96), "mp3_44100_128": (44100, 128),
    "mp3_44100_192": (44100, 192),
}
FORMATS = [*(f"pcm_{r}" for r in SAMPLE_RATES), "ulaw_8000", *MP3_FORMATS]


@dataclass(frozen=True)
class OutputFormat:
    sample_rate: int
    codec: str  # "pcm", "ulaw" or "mp3"
    kbps: int = 0  # mp3 only


def output_format(name: str) -> OutputFormat:
    """An `output_format` -> OutputFormat (SessionError `unsupported_output_format` naming the served ones)."""
    if name == "ulaw_8000":
        return OutputFormat(8000, "ulaw")
    if name in MP3_FORMATS:
        rate, kbps = MP3_FORMATS[name]
        return OutputFormat(rate, "mp3", kbps)
    kind, _, digits = name.partition("_")
    if kind == "pcm" and digits.isdigit() and int(digits) in SAMPLE_RATES:
        return OutputFormat(int(digits), "pcm")
    raise SessionError("unsupported_output_format", f"output_format {shown(name, 40)} is not served; use {FORMATS}")


DEFAULT_OUTPUT_FORMAT = "mp3_44100_128"  # ElevenLabs' (and its SDK's) default on these routes
SERVED = [*FORMATS, *(f"wav_{r}" for r in SAMPLE_RATES)]  # the sockets' formats, and a streamed WAV
MEDIA_TYPES = {"mp3": "audio/mpeg", "pcm": "audio/pcm", "ulaw": "audio/basic", "wav": "audio/wav"}


@dataclass(frozen=True)
class HttpFormat:
    name: str
    sample_rate: int
    kind: str  # mp3, pcm, ulaw or wav
    kbps: int = 0  # mp3 only

    @property
    def session_format(self) -> str:
        """What the session sends: mu-law as it is, everything else as s16le PCM."""
        return "ulaw" if self.kind == "ulaw" else "pcm_s16le"

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.kind]


def parse_http_format(name: str) -> HttpFormat:
    """An `output_format` -> HttpFormat, or SessionError `unsupported_output_format` naming those served."""
    kind, _, rest = name.partition("_")
    try:
        fmt = output_format(f"pcm_{rest}" if kind == "wav" else name)
    except SessionError:
        raise SessionError(
            "unsupported_output_format", f"output_format {shown(name)} is not supported; use one of {SERVED}"
        ) from None
    return HttpFormat(name, fmt.sample_rate, "wav" if kind == "wav" else fmt.codec, fmt.kbps)


class WireEncoder:
    """One response's audio in its format: `start` (a WAV header), then `encode` each piece of
    the session's audio, then `finish` (LAME's last frames)."""

    def __init__(self, fmt: HttpFormat) -> None:
        self.fmt = fmt
        self._mp3 = Mp3Chunks(fmt.sample_rate, fmt.kbps) if fmt.kind == "mp3" else None

    def start(self) -> bytes:
        return wav_header(self.fmt.sample_rate) if self.fmt.kind == "wav" else b""

    def encode(self, audio: bytes) -> bytes:
        return audio if self._mp3 is None else self._mp3.encode(audio)

    def finish(self) -> bytes:
        return b"" if self._mp3 is None else self._mp3.flush()
