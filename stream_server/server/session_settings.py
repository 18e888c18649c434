"""What a session speaks with: the client's settings (voice, speaker, sample rate, format, synthesis
options), checked against the voices the server has. A session's limits are the config's own
`session` section (config.SessionSection), so its defaults are the config's."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..audio.formats import AudioFormatError, check_output
from ..config import SPEAKER_SEPARATOR
from ..engine.requests import SynthesisOptions
from .events import SessionError, shown
from .sentence_cost import VoiceCost

MAX_SPEAKERS_SHOWN = 20  # an unknown speaker's error lists this many of the voice's speakers


@dataclass
class SessionSettings:
    voice: str
    sample_rate: int
    format: str = "pcm_s16le"
    options: SynthesisOptions = field(default_factory=SynthesisOptions)
    # A sentence's seed is its spoken form's, xor this: 0 gives every session the same audio for
    # the same text (and cache hits); a client's own seed (GPT-SoVITS api_v2's) changes it.
    seed_base: int = 0
    # A multi-speaker voice's speaker (a client asked for "<voice>#<speaker>"); None: the voice's own.
    speaker: str | None = None

    @property
    def voice_name(self) -> str:
        """The voice as a client names it (with its speaker)."""
        return self.voice if self.speaker is None else f"{self.voice}{SPEAKER_SEPARATOR}{self.speaker}"


@dataclass(frozen=True)
class VoiceBook:
    """The voices a session may ask for: each one's native sample rate and, for a multi-speaker
    voice, its speakers' names (read off the backends: ModelBackend.sample_rate, .speakers)."""

    rates: dict[str, int]
    speakers: dict[str, list[str]] = field(default_factory=dict)
    # what a sentence's cost estimate needs of each voice (sentence_cost.py); a voice not here:
    # its characters are counted, with no bound on its audio
    costs: dict[str, VoiceCost] = field(default_factory=dict)

    def checked(self, settings: SessionSettings) -> SessionSettings:
        """The settings with "<voice>#<speaker>" resolved, or SessionError naming what is wrong."""
        settings = self._with_speaker(settings)
        if settings.voice not in self.rates:
            raise SessionError(
                "unknown_voice", f"unknown voice {shown(settings.voice)}; available: {sorted(self.rates)}"
            )
        try:
            check_output(settings.sample_rate, settings.format)
        except AudioFormatError as exc:
            raise SessionError(exc.code, str(exc)) from None
        return settings

    def _with_speaker(self, settings: SessionSettings) -> SessionSettings:
        """"<voice>#<speaker>" -> the voice, with that speaker (by name, or its number)."""
        voice, sep, speaker = settings.voice.partition(SPEAKER_SEPARATOR)
        if not sep:
            return settings
        if voice not in self.rates:
            return replace(settings, voice=voice)  # checked() names the unknown voice
        names = self.speakers.get(voice, [])
        if not names:
            raise SessionError("unknown_speaker", f"voice {voice!r} has a single speaker; ask for {voice!r}")
        if speaker not in names and not (speaker.isdigit() and int(speaker) < len(names)):
            listed = ", ".join(names[:MAX_SPEAKERS_SHOWN]) + (", ..." if len(names) > MAX_SPEAKERS_SHOWN else "")
            raise SessionError(
                "unknown_speaker", f"voice {voice!r} has no speaker {shown(speaker)}; speakers ({len(names)}): {listed}"
            )
        return replace(settings, voice=voice, speaker=speaker)


def reconfigured(
    settings: SessionSettings,
    voice: object,
    sample_rate: object,
    fmt: object,
    options: SynthesisOptions | None,
) -> SessionSettings:
    """A client's new settings (a config message): what it does not give stays as it is, and a new
    voice drops the old voice's speaker. Values of the wrong type are refused here; the caller
    checks the result against its voices (VoiceBook.checked)."""
    if not (voice is None or isinstance(voice, str)) or not (fmt is None or isinstance(fmt, str)):
        raise SessionError("invalid_message", "voice and format must be strings")
    if sample_rate is not None and (isinstance(sample_rate, bool) or not isinstance(sample_rate, int)):
        raise SessionError("unsupported_sample_rate", "sample_rate must be a whole number of Hz")
    return replace(
        settings,
        voice=voice or settings.voice,
        speaker=None if voice else settings.speaker,
        sample_rate=sample_rate or settings.sample_rate,
        format=fmt or settings.format,
        options=options or settings.options,
    )
