"""Server configuration: typed defaults here, overridden by a YAML file (configs/default.yaml).

configs/default.yaml spells out these same defaults; a test keeps the two in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSection(_Section):
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    shutdown_grace_seconds: float = 10.0  # on SIGTERM, running sentences get this long to finish


class EngineSection(_Section):
    device: str = "cpu"
    torch_threads: int = 0  # 0: torch's default (all cores)
    max_slots: int = 16  # sentences decoding at once, per voice
    max_prefills_per_step: int = 2
    vocoder_frames_per_step: int = 384
    max_vocoder_batch: int = 4  # same-length chunk windows decoded in one call
    first_chunk_frames: int = 18  # ~0.2 s of audio at 22050 Hz / hop 256
    chunk_frames: int = 64
    warmup: bool = True


class VoiceSection(_Section):
    kind: Literal["piper_vits", "ar"] = "piper_vits"
    # AR voices: a weights file; without one, random weights only if explicitly allowed
    # (for benchmarks of the batching mechanics, never as a real voice).
    weights: str | None = None
    allow_random_weights: bool = False


class SynthesisSection(_Section):
    noise_scale: float = 0.667
    length_scale: float = 1.0
    noise_w: float = 0.8


class SessionSection(_Section):
    sample_rate: int = 22050
    format: str = "pcm_s16le"
    max_text_chars: int = 10000  # per text message
    soft_sentence_chars: int = 200
    hard_sentence_chars: int = 400


class AppConfig(_Section):
    server: ServerSection = Field(default_factory=ServerSection)
    engine: EngineSection = Field(default_factory=EngineSection)
    default_voice: str = "joe"
    voices: dict[str, VoiceSection] = Field(default_factory=lambda: {"joe": VoiceSection()})
    synthesis: SynthesisSection = Field(default_factory=SynthesisSection)
    session: SessionSection = Field(default_factory=SessionSection)

    @model_validator(mode="after")
    def _default_voice_exists(self) -> "AppConfig":
        if self.default_voice not in self.voices:
            raise ValueError(f"default_voice {self.default_voice!r} is not in voices")
        return self


def load_config(path: str | Path | None = None) -> AppConfig:
    if path is None:
        return AppConfig()
    data = yaml.safe_load(Path(path).read_text()) or {}
    return AppConfig.model_validate(data)
