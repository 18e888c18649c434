"""A configured GPT-SoVITS voice, loaded: checkpoints, text frontend, references, backend.

A voice that cannot load stops start-up with a message naming it and what is wrong (a missing
file, another GPT-SoVITS version, a reference clip of the wrong length, ...).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ...config import GptSovitsVoiceSection
from .backend import GptSovitsBackend
from .frontend import TextFrontend
from .reference import HubertFeatures, Reference, make_reference
from .references import ReferenceBook
from .sovits import SovitsV2, load_sovits
from .sv_model import SpeakerEmbedder, missing_speaker_model
from .t2s_checkpoint import load_t2s

log = logging.getLogger(__name__)


def _existing(path: str, what: str, name: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"voice {name!r}: {what} {path!r} not found")
    return p


def speaker_embedder(
    section: GptSovitsVoiceSection, sovits: SovitsV2, name: str, device: str
) -> SpeakerEmbedder | None:
    """The voice's speaker-verification model (``sv_weights``): required by v2Pro/v2ProPlus weights
    (loaded now, so a wrong file stops start-up), else loaded if switched-to weights need it."""
    if section.sv_weights is None:
        if sovits.needs_speaker_embedding:
            raise ValueError(f"voice {name!r}: {missing_speaker_model(sovits.cfg.version)}")
        return None
    embedder = SpeakerEmbedder(_existing(section.sv_weights, "speaker-verification model (sv_weights)", name), device)
    if sovits.needs_speaker_embedding:
        try:
            embedder.load()
        except ValueError as exc:
            raise ValueError(f"voice {name!r}: {exc}") from exc
    return embedder


def reference_book(
    section: GptSovitsVoiceSection, sovits: SovitsV2, frontend: TextFrontend, device: str,
    speaker: SpeakerEmbedder | None = None,
) -> ReferenceBook:
    """References are made with HuBERT, loaded the first time one is needed."""
    hubert_dir = section.hubert_dir
    if hubert_dir is None:
        return ReferenceBook(None, sovits, speaker=speaker)
    hubert: list[HubertFeatures] = []

    def make(path: Path, text: str, lang: str, model: SovitsV2) -> Reference:
        if not hubert:
            hubert.append(HubertFeatures(hubert_dir, device))
        return make_reference(path, text, lang, model, hubert[0], frontend, speaker)

    return ReferenceBook(make, sovits, speaker=speaker)


def load_gpt_sovits_backend(name: str, section: GptSovitsVoiceSection, max_slots: int, device: str) -> GptSovitsBackend:
    t2s_path = _existing(section.t2s_weights, "GPT (s1) checkpoint", name)
    sovits_path = _existing(section.sovits_weights, "SoVITS (s2) checkpoint", name)
    try:
        t2s = load_t2s(t2s_path, device=device)
        sovits = load_sovits(sovits_path).to(device)
    except ValueError as exc:  # another version, a foreign pickle, missing weights: say which voice
        raise ValueError(f"voice {name!r}: {exc}") from exc
    frontend = TextFrontend(Path(section.bert_dir) if section.bert_dir else None)
    frontend.warm({section.text_lang, section.prompt_lang})
    book = reference_book(section, sovits, frontend, device, speaker_embedder(section, sovits, name, device))
    if section.ref_audio is not None:
        ref = _existing(section.ref_audio, "reference audio", name)
        try:
            book.set_default(ref, section.prompt_text, section.prompt_lang)
        except ValueError as exc:
            raise ValueError(f"voice {name!r}: {exc}") from exc
    log.info("voice %s: GPT-SoVITS %s (%s, %s)%s", name, sovits.cfg.version, t2s_path.name, sovits_path.name,
             "" if section.ref_audio else ", no default reference (each request brings one)")
    return GptSovitsBackend(
        name, t2s, sovits, frontend, book, section.text_lang, max_slots, section.max_len, (t2s_path, sovits_path),
        device, section.max_sec,
    )

