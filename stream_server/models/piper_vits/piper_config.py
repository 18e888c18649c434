"""A Piper voice's ``.onnx.json``: what the text front end and the server need from it.

Read with the same defaults as piper-tts' own ``PiperConfig.from_dict`` (espeak phonemes, speaker
0, inference 0.667 / 1.0 / 0.8), and checked up front, so a voice with a broken or unsupported
config is refused at start-up with a message that says what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Phoneme types this server speaks: espeak-ng phonemes, or the text's own code points. Piper's
# other front ends (pinyin, hebrew, japanese, thai) need models of their own, downloaded at run time.
SUPPORTED_PHONEME_TYPES = ("espeak", "text")


class PiperConfigError(ValueError):
    """The voice's json cannot be used (message names the file and the field)."""


def language_tag(espeak_voice: str) -> str:
    """A language tag for a voice whose json has no ``language.code``: espeak's 'en-us' or
    'en-gb-x-rp' -> 'en_US', 'en_GB' (how Piper's json names languages); others ('de', 'cmn',
    'en-029') as they are."""
    parts = espeak_voice.split("-")
    if len(parts) >= 2 and len(parts[1]) == 2 and parts[1].isalpha():
        return f"{parts[0]}_{parts[1].upper()}"
    return espeak_voice


@dataclass(frozen=True)
class PiperVoiceConfig:
    sample_rate: int
    espeak_voice: str
    language: str  # json language.code (e.g. en_US), else derived from the espeak voice
    phoneme_type: str
    phoneme_id_map: dict[str, list[int]]
    num_speakers: int = 1
    speaker_id_map: dict[str, int] = field(default_factory=dict)
    default_speaker_id: int = 0
    vowel_clusters: frozenset[tuple[str, ...]] | None = None
    # the voice's own synthesis defaults (this server uses its `synthesis` section instead)
    inference: dict[str, float] = field(default_factory=dict)

    @classmethod
    def read(cls, path: str | Path) -> PiperVoiceConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PiperConfigError(f"voice config {str(path)!r} not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PiperConfigError(f"voice config {str(path)!r} is not readable JSON: {exc}") from None
        try:
            return cls.from_dict(data)
        except PiperConfigError as exc:
            raise PiperConfigError(f"voice config {str(path)!r}: {exc}") from None

    @classmethod
    def from_dict(cls, data: Any) -> PiperVoiceConfig:
        if not isinstance(data, dict):
            raise PiperConfigError("not a JSON object")
        try:
            sample_rate = int(data["audio"]["sample_rate"])
            id_map = {str(k): [int(i) for i in v] for k, v in data["phoneme_id_map"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise PiperConfigError(f"needs audio.sample_rate and phoneme_id_map ({exc!r})") from None
        phoneme_type = str(data.get("phoneme_type", "espeak"))
        if phoneme_type not in SUPPORTED_PHONEME_TYPES:
            raise PiperConfigError(
                f"phoneme_type {phoneme_type!r} is not supported (supported: {', '.join(SUPPORTED_PHONEME_TYPES)})"
            )
        espeak_voice = str((data.get("espeak") or {}).get("voice", "en-us"))
        language = (data.get("language") or {}).get("code") or language_tag(espeak_voice)
        speakers = {str(k): int(v) for k, v in (data.get("speaker_id_map") or {}).items()}
        clusters = data.get("vowel_clusters")
        return cls(
            sample_rate=sample_rate,
            espeak_voice=espeak_voice,
            language=str(language),
            phoneme_type=phoneme_type,
            phoneme_id_map=id_map,
            num_speakers=int(data.get("num_speakers", 1)),
            speaker_id_map=speakers,
            default_speaker_id=int(data.get("default_speaker_id", 0)),
            vowel_clusters=frozenset(tuple(c) for c in clusters) if clusters else None,
            inference={k: float(v) for k, v in (data.get("inference") or {}).items()},
        )

    @property
    def speakers(self) -> list[str]:
        """Speaker names in id order (empty for a single-speaker voice)."""
        return sorted(self.speaker_id_map, key=self.speaker_id_map.__getitem__)

    def speaker_id(self, speaker: str) -> int:
        """A speaker by its name in speaker_id_map, or by its number ('3'), as wyoming-piper takes it."""
        if speaker in self.speaker_id_map:
            return self.speaker_id_map[speaker]
        if speaker.isdigit() and int(speaker) < self.num_speakers:
            return int(speaker)
        known = ", ".join(self.speakers[:10]) + (", ..." if len(self.speakers) > 10 else "")
        which = f" (speakers: {known})" if known else " (a single-speaker voice)"
        raise PiperConfigError(f"unknown speaker {speaker!r}{which}")
