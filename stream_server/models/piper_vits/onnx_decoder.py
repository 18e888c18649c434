"""A Piper voice's HiFi-GAN decoder run by onnxruntime (engine.vocoder_runtime: onnxruntime).

The vocoder is most of the engine's time on a CPU (bench/engine_profile.py); onnxruntime runs the
same graph in less time than eager torch, on a thread pool of its own beside the engine's torch
thread (on 2 cores the server's throughput at 16 sessions nearly doubled: bench/bench_peer.py
--vocoder-runtime torch / onnxruntime). The torch module stays the reference:
the graph is exported from it (never read from the voice's .onnx, whose decoder is fused with the
rest of VITS), and tests/test_onnx_decoder.py holds the two equal. Exports are cached on disk,
keyed by the weights, so only a voice's first start pays for one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .vits_decoder import HifiganGenerator

log = logging.getLogger(__name__)

EXPORT_VERSION = "1"  # bump when the export (inputs, opset) changes: old cache files are not reused
OPSET = 17


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "stream_server" / "onnx"


class _WithSpeaker(nn.Module):
    """forward(z, g): the export's inputs must all be tensors (g only for multi-speaker voices)."""

    def __init__(self, decoder: HifiganGenerator) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return self.decoder(z, g)


def weights_digest(decoder: HifiganGenerator) -> str:
    """Names, shapes and bytes of every parameter: a cached export is reused only for these weights."""
    h = hashlib.sha256(f"{EXPORT_VERSION}:{torch.__version__}:{OPSET}".encode())
    for name, tensor in decoder.state_dict().items():
        h.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


def export(decoder: HifiganGenerator, path: Path) -> None:
    """Write the decoder's graph with dynamic batch and frame axes (atomically: a reader never
    sees half a file)."""
    channels = decoder.cfg.in_channels
    z = torch.zeros(1, channels, 32)
    if decoder.cond is not None:
        module: nn.Module = _WithSpeaker(decoder)
        args: tuple = (z, torch.zeros(1, decoder.cfg.speaker_channels, 1))
        names, axes = ["z", "g"], {"z": {0: "batch", 2: "frames"}, "g": {0: "batch"}}
    else:
        module, args, names, axes = decoder, (z,), ["z"], {"z": {0: "batch", 2: "frames"}}
    axes["audio"] = {0: "batch", 1: "samples"}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".partial")
    os.close(fd)
    try:
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(module.eval(), args, tmp, input_names=names, output_names=["audio"],
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class OnnxDecoder:
    """Callable like the torch decoder: (z [B, C, F], g [B, S, 1] | None) -> audio [B, F * hop]."""

    def __init__(self, decoder: HifiganGenerator, cache_dir: Path | None = None, threads: int = 0) -> None:
        import onnxruntime as ort

        self.path = (cache_dir or default_cache_dir()) / f"hifigan-{weights_digest(decoder)}.onnx"
        self.speakers = decoder.cond is not None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: onnxruntime's default (the machine's cores)
        options.inter_op_num_threads = 1
        # no busy-waiting after a run: the engine's next torch op (a decode step, a prefill) needs
        # those cores at once (spinning made them ~2x slower on 2 cores)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = self._open(ort, decoder, options)

    def _open(self, ort, decoder: HifiganGenerator, options):
        if self.path.is_file():
            try:
                return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # a damaged cache file: export again
                log.warning("vocoder export %s unreadable (%s): exporting again", self.path, exc)
        log.info("exporting the vocoder to %s (once per voice's weights)", self.path)
        try:
            export(decoder, self.path)
        except OSError as exc:  # a read-only home: this process's own copy, exported at every start
            self.path = Path(tempfile.mkdtemp(prefix="stream_server_onnx_")) / self.path.name
            log.warning("cannot write the vocoder export cache (%s): using %s", exc, self.path)
            export(decoder, self.path)
        return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def __call__(self, z: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        feeds = {"z": np.ascontiguousarray(z.detach().cpu().numpy(), dtype=np.float32)}
        if self.speakers:
            if g is None:
                raise ValueError("this voice's decoder needs a speaker embedding")
            feeds["g"] = np.ascontiguousarray(g.detach().cpu().numpy(), dtype=np.float32)
        (audio,) = self.session.run(["audio"], feeds)
        return torch.from_numpy(audio)
