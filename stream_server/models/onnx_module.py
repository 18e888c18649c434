"""A torch module exported to ONNX once (cached on disk, keyed by its weights) and run by onnxruntime.

On a CPU onnxruntime runs these graphs in less time than eager torch: the Piper HiFi-GAN decoder,
and the prefill's text encoder (1.35x), stochastic duration flows (2.2x) and the AR voice's
conditioning stack (1.35x; bench/engine_profile.py). The torch module stays the reference: the
graph is exported from it, and the tests hold the two equal. Exports are cached by the module's
weights (and the torch version and opset), so only a voice's first start pays for one; a damaged
cache file is exported again, and an unwritable cache directory falls back to a private one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

EXPORT_VERSION = "1"  # bump when exports change (inputs, opset): old cache files are not reused
OPSET = 17


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "stream_server" / "onnx"


def weights_digest(module: nn.Module) -> str:
    """Names, shapes and bytes of every parameter and buffer: a cached export is reused only for these."""
    h = hashlib.sha256(f"{EXPORT_VERSION}:{torch.__version__}:{OPSET}".encode())
    for name, tensor in module.state_dict().items():
        h.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


def export(module: nn.Module, example: tuple[torch.Tensor, ...], names: Sequence[str],
           outputs: Sequence[str], axes: dict[str, dict[int, str]], path: Path) -> None:
    """Write the module's graph (atomically: a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".partial")
    os.close(fd)
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            # the tracer's notes on shape arithmetic: the graphs are checked against torch by tests
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(module.eval(), example, tmp, input_names=list(names), output_names=list(outputs),
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class OnnxModule:
    """`module` run by onnxruntime: call with tensors in the order of `names`, get a list of
    float32 tensors in the order of `outputs`. `tag` names the cache file ("hifigan", ...)."""

    def __init__(self, module: nn.Module, example: tuple[torch.Tensor, ...], names: Sequence[str],
                 outputs: Sequence[str], axes: dict[str, dict[int, str]], tag: str,
                 cache_dir: Path | None = None, threads: int = 0) -> None:
        import onnxruntime as ort

        self.names, self.outputs = list(names), list(outputs)
        self.path = (cache_dir or default_cache_dir()) / f"{tag}-{weights_digest(module)}.onnx"
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: onnxruntime's default (the machine's cores)
        options.inter_op_num_threads = 1
        # no busy-waiting after a run: the engine's next torch op needs those cores at once
        # (spinning made them ~2x slower on 2 cores)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = self._open(ort, options, lambda path: export(module, example, names, outputs, axes, path))

    def _open(self, ort: Any, options: Any, write: Any) -> Any:
        if self.path.is_file():
            try:
                return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # a damaged cache file: export again
                log.warning("onnx export %s unreadable (%s): exporting again", self.path, exc)
        log.info("exporting to %s (once per module's weights)", self.path)
        try:
            write(self.path)
        except OSError as exc:  # a read-only home: this process's own copy, exported at every start
            self.path = Path(tempfile.mkdtemp(prefix="stream_server_onnx_")) / self.path.name
            log.warning("cannot write the onnx export cache (%s): using %s", exc, self.path)
            write(self.path)
        return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def __call__(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        feeds = {name: np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32 if x.is_floating_point()
                                            else np.int64) for name, x in zip(self.names, inputs)}
        return [torch.from_numpy(y) for y in self.session.run(self.outputs, feeds)]
