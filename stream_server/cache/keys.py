"""Cache keys: a hash of everything that decides a sentence's audio and its output encoding.

key = hash(entry layout, model and weights version, voice, synthesis parameters (seed included), output
sample rate and format, spoken form). The hash only picks a slot: the spoken form and the
parameters (`material`) are stored in the entry too and compared on read, so a collision can
never return another sentence's audio. The hash function is injectable (tests force collisions).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from ..audio.formats import OutputSpec
from ..engine.requests import SentenceRequest, SynthesisOptions
from .codec import LAYOUT

# Bump when synthesis code changes the audio of a given input (model code, seeding, chunking):
# old entries then simply stop matching.
SYNTHESIS_VERSION = 2  # 2: entries carry word timings

HashFn = Callable[[bytes], str]


def blake2b_128(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


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

    def key(self, request: SentenceRequest, output: OutputSpec) -> SentenceKey:
        """The key of a request's audio: its spoken form (already normalised by the session),
        voice, model, every synthesis option and the output encoding."""
        material = json.dumps(
            {
                "v": SYNTHESIS_VERSION,
                "layout": LAYOUT,  # servers of another entry layout use other slots (rolling upgrades)
                "voice": request.voice,
                "model": self.fingerprints[request.voice],
                **options_material(request.options),
                "sample_rate": int(output.sample_rate),
                "format": output.format,
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        spoken = request.spoken
        digest = self.hash_fn(json.dumps([material, spoken], ensure_ascii=False).encode("utf-8"))
        return SentenceKey(spoken, material, digest)


def options_material(options: SynthesisOptions) -> dict[str, object]:
    """Every field of the options (a new one joins the key by itself). repr keeps floats exact:
    0.667 and 0.6670000001 are different parameters; an integral value of a float field is the
    same parameter (1 == 1.0)."""
    out: dict[str, object] = {}
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        if value is None or f.name == "extra":
            out[f.name] = value if value is None else sorted([str(k), str(v)] for k, v in value)
        elif f.name == "shared_rng":
            out[f.name] = [str(value[0]), int(value[1])]
        elif "float" in str(f.type):
            out[f.name] = repr(float(value))
        else:
            out[f.name] = int(value)
    return out
