"""What the server says about its voices: GET /v1/voices and Wyoming's `info` list the same facts
(kind, language, sample rate, speakers, the default), as the loaded backends describe themselves
(engine/backend.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .services import Services

KIND_NAMES = {  # a backend's `kind` as a person reads it
    "ar": "autoregressive voice (distilled from Piper)",
    "piper_vits": "Piper VITS",
    "gpt_sovits": "GPT-SoVITS",
}


@dataclass(frozen=True)
class VoiceInfo:
    name: str
    kind: str
    language: str | None  # a Piper voice's json language.code (en_US), else from its espeak voice
    sample_rate: int
    default: bool
    speakers: list[str] = field(default_factory=list)  # ask for one as "<name>#<speaker>"
    espeak_voice: str | None = None  # Piper voices: the espeak-ng voice that phonemizes their text

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line for a voice picker (Wyoming's `info`): the model, language, rate, speakers."""
        parts = [KIND_NAMES.get(self.kind, self.kind), self.language or "language unknown", f"{self.sample_rate} Hz"]
        if self.speakers:
            parts.append(f"{len(self.speakers)} speakers")
        return f"{self.name}: {', '.join(parts)}" + (" (default)" if self.default else "")



def voice_infos(services: Services) -> list[VoiceInfo]:
    default = services.config.default_voice
    return [
        VoiceInfo(
            name=name,
            kind=backend.kind,
            language=backend.language,
            sample_rate=backend.sample_rate,
            default=name == default,
            speakers=list(backend.speakers),
            espeak_voice=backend.espeak_voice,
        )
        for name, backend in services.voices.items()
    ]


def _same_language(a: str, b: str) -> bool:
    """en_US == en-us; a bare 'en' matches any English voice."""
    a, b = a.replace("-", "_").lower(), b.replace("-", "_").lower()
    return a == b or a.split("_")[0] == b or b.split("_")[0] == a


def voice_for_language(services: Services, language: str) -> str:
    """A voice that speaks `language`: the default voice if it does, else the first that does,
    else the default voice (a client naming only a language still gets speech)."""
    infos = voice_infos(services)
    matching = [v.name for v in infos if v.language and _same_language(v.language, language)]
    default = services.config.default_voice
    return default if default in matching or not matching else matching[0]
