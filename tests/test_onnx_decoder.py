"""engine.vocoder_runtime: onnxruntime. The HiFi-GAN decoder exported from the torch module and run
by onnxruntime gives the torch decoder's audio (to float rounding), for single- and multi-speaker
voices, batched rows included; exports are cached by weights and a damaged cache file is replaced;
a server voice on it streams what its own offline synthesis gives."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from stream_server.config import AppConfig
from stream_server.engine.engine import Engine
from stream_server.engine.requests import AudioEvent, ErrorEvent, SentenceRequest, SynthesisOptions
from stream_server.models.loading import build_backends
from stream_server.models.piper_vits.onnx_decoder import OnnxDecoder
from stream_server.models.piper_vits.piper_voice import PiperVoice
from stream_server.models.piper_vits.voice_files import PiperVoices
from stream_server.server.services import engine_config
from stream_server.text.spoken_form import seed_of, spoken_form

pytestmark = pytest.mark.slow

TOL = 1e-5  # measured ~3e-7 on audio in [-1, 1]


def torch_and_onnx(voice: PiperVoice, cache_dir) -> tuple[PiperVoice, PiperVoice]:
    on_onnx = copy.deepcopy(voice)
    on_onnx.use_onnx_decoder(cache_dir)
    return voice, on_onnx


@pytest.mark.parametrize("batch,frames", [(1, 20), (3, 86)])
def test_the_export_gives_the_torch_decoders_audio(piper, tmp_path, batch, frames):
    reference, exported = torch_and_onnx(piper, tmp_path)
    z = torch.randn(batch, piper.latent_channels, frames, generator=torch.Generator().manual_seed(frames))
    want, got = reference.decode(z), exported.decode(z)
    assert got.shape == want.shape == (batch, frames * piper.hop_length)
    assert float((got - want).abs().max()) <= TOL
    assert exported.decoder_runtime == "onnxruntime" and reference.decoder_runtime == "torch"


def test_a_multi_speaker_voice_keeps_each_rows_speaker(tiny_voices, tmp_path):
    v = tiny_voices["multi"]
    reference, exported = torch_and_onnx(PiperVoice.from_onnx(v.onnx, v.config), tmp_path)
    z = torch.randn(3, reference.latent_channels, 40, generator=torch.Generator().manual_seed(3))
    want, got = reference.decode(z, [0, 1, 2]), exported.decode(z, [0, 1, 2])
    assert float((got - want).abs().max()) <= TOL
    assert float((got[0] - got[1]).abs().max()) > 100 * TOL  # the speakers really differ


def test_exports_are_cached_and_a_damaged_one_is_made_again(piper, tmp_path):
    first = OnnxDecoder(piper.decoder, tmp_path)
    written = first.path.stat().st_mtime_ns
    assert OnnxDecoder(piper.decoder, tmp_path).path.stat().st_mtime_ns == written  # reused, not re-exported
    first.path.write_bytes(b"not an onnx graph")
    again = OnnxDecoder(piper.decoder, tmp_path)
    z = torch.randn(1, piper.latent_channels, 16)
    assert float((again(z) - piper.decode(z)).abs().max()) <= TOL


def test_onnxruntime_is_for_the_cpu_and_auto_picks_it_there_only():
    with pytest.raises(ValueError, match="vocoder_runtime onnxruntime runs on the CPU"):
        PiperVoices("cuda", "onnxruntime")
    assert PiperVoices("cpu", "auto").vocoder_runtime == "onnxruntime"
    assert PiperVoices("cuda", "auto").vocoder_runtime == "torch"
    assert AppConfig().engine.vocoder_runtime == "auto"  # the default (see README, Benchmarks)


def test_a_served_voice_on_onnxruntime_streams_its_offline_audio(piper, tmp_path, one_torch_thread):
    cfg = AppConfig()
    cfg.engine.vocoder_runtime = "onnxruntime"
    cfg.engine.onnx_cache_dir = str(tmp_path)
    backends = build_backends(cfg)
    ar = backends["joe_ar"]
    assert "vocoder=onnxruntime" in ar.fingerprint  # cache keys differ from torch's audio
    engine = Engine(backends, engine_config(cfg))
    spoken = spoken_form("The lantern flickered twice, then the gate swung open.")
    options = SynthesisOptions(0.667, 1.0, 0.8, seed_of(spoken))
    engine.submit(SentenceRequest("s", "default", spoken, "joe_ar", options, 0))
    chunks, last = [], False
    with torch.inference_mode():
        while not last:
            for event in engine.step():
                assert not isinstance(event, ErrorEvent), event.message
                if isinstance(event, AudioEvent):
                    chunks.append(event.pcm)
                    last = last or event.last
    streamed = np.concatenate(chunks)
    offline = ar.synthesize_offline(spoken, options)
    assert len(chunks) > 1 and streamed.shape == offline.shape
    assert float(np.abs(streamed - offline).max()) <= 1e-4


def test_an_unwritable_cache_dir_falls_back_to_a_private_copy(piper, tmp_path):
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("a file where the cache directory should be")
    decoder = OnnxDecoder(piper.decoder, blocked / "onnx")
    assert decoder.path.is_file() and blocked not in decoder.path.parents
    z = torch.randn(1, piper.latent_channels, 16)
    assert float((decoder(z) - piper.decode(z)).abs().max()) <= TOL
