"""A GPT-SoVITS voice's reference: what the T2S continues from and what gives SoVITS its timbre.

From a 3-10 s clip, its transcript and language, as upstream's TTS.set_ref_audio does:
- prompt tokens: the clip at 16 kHz with 0.3 x 32000 zero samples appended (upstream appends its
  32 kHz silence length to the 16 kHz audio), HuBERT's last hidden state (a local
  `chinese-hubert-base`-style directory, loaded with `transformers`, raw audio in: upstream calls
  the model without its feature extractor), then SoVITS' `extract_latent`;
- style: the clip at 32 kHz (scaled down when it peaks above 1), its linear spectrogram, then
  SoVITS' reference encoder (computed once here: every sentence of the voice shares it); for a
  v2Pro/v2ProPlus model also the speaker-verification embedding of that 32 kHz audio taken to
  16 kHz (torchaudio's sinc resampling, as upstream), folded into the same style vector;
- prompt phones and BERT features of the transcript (the text frontend).
Resampling is soxr's HQ (librosa's default, which upstream uses for the 16 kHz audio; upstream
resamples the 32 kHz audio with torchaudio, which rounds slightly differently).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import av
import numpy as np
import soundfile as sf
import soxr
import torch

from .frontend.segment import SPLITS
from .sovits import SovitsV2
from .sv_fbank import RATE as SV_RATE
from .sv_fbank import resample
from .sv_model import missing_speaker_model

# 16 kHz audio [N] -> speaker-verification embedding [1, dim] (sv_model.SpeakerEmbedder)
EmbedSpeaker = Callable[[torch.Tensor], torch.Tensor]

MIN_SECONDS, MAX_SECONDS = 3.0, 10.0
# A 10 s clip is at most a few MB in any format a user records (WAV at 48 kHz, 16 bit, stereo: 1.9
# MB); a named file larger than this is refused before anything reads it.
MAX_CLIP_BYTES = 32 << 20
_HUBERT_RATE = 16000


class ReferenceError(ValueError):
    """A reference clip that cannot be used (missing, unreadable, too short or too long)."""


class PhonesAndBert(Protocol):
    """What a reference reads of the frontend's output for its transcript (FrontendOutput)."""

    @property
    def phone_ids(self) -> list[int]: ...

    @property
    def bert(self) -> torch.Tensor: ...  # [1024, P]

    @property
    def norm_text(self) -> str: ...  # the text as normalised (upstream sorts pieces by its length)


class Frontend(Protocol):
    def phones(self, text: str, lang: str, bert: bool = True) -> PhonesAndBert: ...

    def split(self, text: str, method: str, lang: str) -> list[str]: ...  # api_v2's text_split_method


@dataclass(frozen=True)
class Reference:
    ref_id: str  # digest of the clip and its transcript: part of every sentence's cache key
    prompt_tokens: torch.Tensor  # [Y] long
    prompt_phones: list[int]
    prompt_bert: torch.Tensor  # [1024, Pp]
    style: torch.Tensor  # ge [1, gin, 1] (v2: 512; v2Pro: 1024, the SV embedding folded in)


class HubertFeatures:
    """HuBERT (transformers' HubertModel) from a local directory; nothing is downloaded."""

    def __init__(self, directory: str | Path, device: str = "cpu") -> None:
        path = Path(directory)
        if not path.is_dir():
            raise ReferenceError(
                f"HuBERT directory {str(path)!r} not found (config: hubert_dir, or cnhuhbert_base_path in "
                "tts_infer.yaml): a chinese-hubert-base style directory with config.json and weights"
            )
        from transformers import HubertModel

        model = HubertModel.from_pretrained(str(path), local_files_only=True)
        self.model = model.to(device).eval()  # type: ignore[arg-type]  # transformers' typed .to() wants self twice

    @torch.inference_mode()
    def __call__(self, wav16k: np.ndarray) -> torch.Tensor:
        """[N] float audio at 16 kHz -> [1, 768, frames] (50 Hz)."""
        x = torch.from_numpy(np.ascontiguousarray(wav16k, dtype=np.float32))[None].to(self.model.device)
        return self.model(x).last_hidden_state.transpose(1, 2).float()


def _unusable() -> ReferenceError:
    """One answer for every way a named path is not a clip (missing, not a regular file,
    unreadable, too large, not audio): it says nothing of what is there, and quotes nothing."""
    return ReferenceError(
        f"reference audio cannot be used: it must be a readable audio file (WAV, FLAC, Ogg, MP3, M4A) of "
        f"{MIN_SECONDS:g}-{MAX_SECONDS:g} s and at most {MAX_CLIP_BYTES >> 20} MiB"
    )


def _check_seconds(seconds: float) -> None:
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise ReferenceError(f"reference audio must be {MIN_SECONDS:g}-{MAX_SECONDS:g} s long, not {seconds:.2f} s")


def check_clip(path: str | Path) -> None:
    """Before a clip is read whole or hashed: a regular file of at most MAX_CLIP_BYTES whose header
    (soundfile's, else FFmpeg's through PyAV: m4a/AAC, mp3) gives MIN_SECONDS to MAX_SECONDS of
    audio (ReferenceError otherwise)."""
    try:
        info = os.stat(path)  # a FIFO or a device (/dev/zero) is no clip, and is never opened
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_CLIP_BYTES:
            raise _unusable()
    except (OSError, ValueError):
        raise _unusable() from None
    try:
        header = sf.info(str(path))
        seconds = header.frames / header.samplerate if header.samplerate else 0.0
    except (OSError, RuntimeError, ValueError):  # soundfile's LibsndfileError is a RuntimeError
        seconds = _av_seconds(path)
    _check_seconds(seconds)


def read_clip(path: str | Path) -> tuple[np.ndarray, int]:
    """Mono float audio and its rate; stereo is averaged (as upstream)."""
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError):  # soundfile raises LibsndfileError (a RuntimeError)
        return _av_read(path)
    return audio.mean(axis=1), rate


# What libsndfile cannot read (upstream loads clips with librosa, which falls back to FFmpeg): PyAV.
def _av_seconds(path: str | Path) -> float:
    """The audio's length from the container's header, without decoding it."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            return (container.duration or 0) / av.time_base
    except (av.FFmpegError, IndexError, OSError, ValueError):
        raise _unusable() from None


def _av_read(path: str | Path) -> tuple[np.ndarray, int]:
    """Decoded to planar float at its own rate ([channels, n] per frame), then channels averaged."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            to_float = av.AudioResampler(format="fltp", layout=stream.layout, rate=stream.rate)
            frames = [out.to_ndarray() for frame in container.decode(stream) for out in to_float.resample(frame)]
            frames += [out.to_ndarray() for out in to_float.resample(None)]
            rate = stream.rate
    except (av.FFmpegError, IndexError, OSError, ValueError):
        raise _unusable() from None
    if not frames:
        raise _unusable()
    return np.concatenate(frames, axis=1).mean(axis=0).astype(np.float32), rate


def clip_digest(path: str | Path, prompt_text: str, prompt_lang: str) -> str:
    """The reference's id: the clip's bytes (read in pieces) and its transcript."""
    with open(path, "rb") as clip:
        h = hashlib.file_digest(clip, "sha256")
    h.update(f"\0{prompt_lang}\0{prompt_text}".encode())
    return h.hexdigest()[:16]


def make_reference(
    path: str | Path, prompt_text: str, prompt_lang: str, sovits: SovitsV2, hubert: HubertFeatures, frontend: Frontend,
    speaker: EmbedSpeaker | None = None,
) -> Reference:
    check_clip(path)
    audio, rate = read_clip(path)
    _check_seconds(len(audio) / rate)
    digest = clip_digest(path, prompt_text, prompt_lang)
    style = _style(audio, rate, sovits, speaker)
    if not prompt_text.strip():  # upstream's reference-free path: neither the prompt's phones nor its tokens
        return Reference(digest, torch.zeros(0, dtype=torch.long), [], torch.zeros(1024, 0), style)
    wav16k = soxr.resample(audio, rate, _HUBERT_RATE, quality="HQ") if rate != _HUBERT_RATE else audio
    silence = np.zeros(int(sovits.sample_rate * 0.3), dtype=np.float32)
    tokens = sovits.extract_latent(hubert(np.concatenate([wav16k, silence])))[0, 0].long()
    prompt = frontend.phones(with_final_mark(prompt_text, prompt_lang), prompt_lang)
    return Reference(digest, tokens, list(prompt.phone_ids), prompt.bert, style)


def clip_style(path: str | Path, sovits: SovitsV2, speaker: EmbedSpeaker | None = None) -> torch.Tensor:
    """An auxiliary clip's timbre (api_v2's aux_ref_audio_paths): checked as a reference clip is."""
    check_clip(path)
    audio, rate = read_clip(path)
    return _style(audio, rate, sovits, speaker)


def with_final_mark(prompt_text: str, prompt_lang: str) -> str:
    """The transcript as upstream phonemizes it: ended by a split mark ("." in English, else "。")."""
    text = prompt_text.strip("\n")
    return text if text[-1] in SPLITS else text + ("." if prompt_lang == "en" else "。")


def _style(audio: np.ndarray, rate: int, sovits: SovitsV2, speaker: EmbedSpeaker | None) -> torch.Tensor:
    """The clip's timbre (ge [1, gin, 1]) from its 32 kHz spectrogram, a loud clip scaled down as
    upstream; v2Pro adds the speaker-verification embedding of the same audio at 16 kHz."""
    wav32k = soxr.resample(audio, rate, sovits.sample_rate, quality="HQ") if rate != sovits.sample_rate else audio
    peak = float(np.abs(wav32k).max()) if len(wav32k) else 0.0
    if peak > 1:
        wav32k = wav32k / min(2.0, peak)
    wav = torch.from_numpy(np.ascontiguousarray(wav32k, dtype=np.float32))
    spec = sovits.spectrogram(wav)
    if not sovits.needs_speaker_embedding:
        return sovits.style(spec)
    if speaker is None:
        raise missing_speaker_model(sovits.cfg.version)
    return sovits.style(spec, speaker(resample(wav, sovits.sample_rate, SV_RATE)))

