"""GPT-SoVITS v2 SoVITS ("s2"): checkpoint loading, parity with upstream's own outputs on the tiny
fixture, and streamed (chunked) decoding against the whole-sentence decode."""

from __future__ import annotations

import os
import pickle
import sys
import types
import zipfile
from io import BytesIO  # (not `import io`: the fixtures below have that name)
from pathlib import Path

import numpy as np
import pytest
import torch

from shared_fixtures import gpt_sovits_fixtures
from stream_server.models.gpt_sovits.sovits import LatentNoise, load_sovits, random_sovits
from stream_server.models.gpt_sovits.sovits_checkpoint import (
    CheckpointError,
    HParamsRecord,
    SovitsConfig,
    fold_weight_norm,
    hparams_to_dict,
    read_sovits_checkpoint,
    restricted_torch_load,
)
from stream_server.models.gpt_sovits.sovits_stream import (
    StreamContext,
    chunk_config,
    decode_chunks,
    decode_window,
    default_context,
    snr_db,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py: why


FIXTURES = gpt_sovits_fixtures()
CKPT = FIXTURES / "sovits_tiny.pth"


@pytest.fixture(scope="module")
def io():
    if not CKPT.is_file():
        pytest.fail(f"missing fixture {CKPT}")
    data = np.load(FIXTURES / "sovits_tiny_io.npz")
    return {k: torch.from_numpy(data[k]) for k in data.files}


@pytest.fixture(scope="module")
def tiny():
    return load_sovits(CKPT)


@pytest.fixture(scope="module")
def real_size():
    """Random weights, real s2 v2 dimensions (configs/s2.json), fixed seed."""
    return random_sovits(SovitsConfig(), seed=0)


# -- loader ------------------------------------------------------------------------------------


def test_loader_reads_config_and_uses_every_inference_weight():
    ckpt = read_sovits_checkpoint(CKPT)
    assert ckpt.version == "v2" and ckpt.info == "1epoch_1iteration"
    assert ckpt.config.filter_channels == 64 and ckpt.config.n_layers == 2
    assert ckpt.config.resblock_kernel_sizes == (3,) and ckpt.config.upsample_initial_channel == 64
    assert ckpt.raw_config["model"]["version"] == "v2"
    assert all(v.dtype == torch.float32 for v in ckpt.weights.values())
    assert not any(k.endswith(("weight_g", "weight_v")) for k in ckpt.weights)
    from stream_server.models.gpt_sovits.sovits import SovitsV2

    model = SovitsV2(ckpt.config)
    unused = model.load_weights(ckpt.weights)  # raises on a missing or unexpected weight
    # only the codebook's training statistics (EMA) are left over
    codebook = "quantizer.vq.layers.0._codebook."
    assert unused == [codebook + "cluster_size", codebook + "embed_avg"]
    params = {k: v for k, v in model.state_dict().items()}
    assert sum(v.numel() for v in params.values()) == sum(
        v.numel() for k, v in ckpt.weights.items() if k not in unused and not k.endswith("inited"))


def test_weight_norm_is_folded_as_upstream():
    """g * v / ||v|| with the norm over all axes but 0, as torch's weight_norm (dim 0) computes."""
    g = torch.Generator().manual_seed(0)
    for shape in [(8, 4, 5), (6, 3, 16)]:  # Conv1d [out, in, k] and ConvTranspose1d [in, out, k]
        v = torch.randn(shape, generator=g)
        w_g = torch.rand(shape[0], 1, 1, generator=g) + 0.5
        folded = fold_weight_norm(
            {"w.weight_g": w_g.half(), "w.weight_v": v.half(), "w.bias": v[0, 0].half()})
        assert set(folded) == {"w.weight", "w.bias"}
        expected = torch._weight_norm(v.half().float(), w_g.half().float(), 0)
        assert torch.allclose(folded["w.weight"], expected, atol=1e-6)


class _Boom:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_loader_refuses_a_pickle_with_a_foreign_global_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"weight": {}, "config": _Boom(marker), "info": "x"}, path)
    with pytest.raises(CheckpointError, match=r"system.*not allowed"):
        read_sovits_checkpoint(path)
    assert not marker.exists()


def _pickle_str(text: str) -> bytes:
    return pickle.BINUNICODE + len(text.encode()).to_bytes(4, "little") + text.encode()


def _slotstate(name: str, value: bytes) -> bytes:
    """BUILD's (None, {name: value}) state: setattr(target, name, value) in the pickle module."""
    return pickle.NONE + pickle.EMPTY_DICT + _pickle_str(name) + value + pickle.SETITEM + pickle.TUPLE2


# Opcodes run before the genuine pickle (then POPped): each changes a global the allow-list gives.
_CHANGES_A_GLOBAL = {
    # torch's tensor rebuild helper loses its defaults: every later checkpoint fails to load (or,
    # with other defaults, loads wrong)
    "build_defaults": b"ctorch._utils\n_rebuild_tensor_v2\n" + _slotstate("__defaults__", pickle.EMPTY_TUPLE)
    + pickle.BUILD + pickle.POP,
    "build_class": b"cutils\nHParams\n" + _slotstate("planted", pickle.NEWTRUE) + pickle.BUILD + pickle.POP,
    "setitems_class": b"ccollections\nOrderedDict\n" + pickle.MARK + _pickle_str("k") + pickle.NONE
    + pickle.SETITEMS + pickle.POP,
    "appends_function": b"ctorch._utils\n_rebuild_tensor_v2\n" + pickle.MARK + pickle.NONE + pickle.APPENDS
    + pickle.POP,
}


def _with_opcodes_first(src: Path, dst: Path, opcodes: bytes) -> None:
    """A copy of a genuine torch zip checkpoint whose pickle runs `opcodes` first."""
    out = BytesIO()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("/data.pkl"):
                assert data[:1] == pickle.PROTO
                data = data[:2] + opcodes + data[2:]
            zout.writestr(info.filename, data)
    dst.write_bytes(out.getvalue())


@pytest.mark.parametrize("attack", _CHANGES_A_GLOBAL)
def test_loader_refuses_a_pickle_that_changes_an_allowed_global(tmp_path, attack):
    """A crafted checkpoint may name the allowed globals, but not change them (BUILD, SETITEMS,
    APPENDS, ... on a function or class): refused, the globals as they were, and genuine
    checkpoints load afterwards."""
    rebuild = torch._utils._rebuild_tensor_v2
    defaults = rebuild.__defaults__
    path = tmp_path / "crafted.pth"
    _with_opcodes_first(CKPT, path, _CHANGES_A_GLOBAL[attack])
    try:
        with pytest.raises(CheckpointError, match="may not"):
            read_sovits_checkpoint(path)
        assert rebuild.__defaults__ == defaults and not hasattr(HParamsRecord, "planted")
        assert read_sovits_checkpoint(CKPT).version == "v2"  # genuine ones still load
        from stream_server.models.gpt_sovits.t2s_checkpoint import read_checkpoint
        assert read_checkpoint(FIXTURES / "t2s_tiny.ckpt").config.phoneme_vocab_size == 732
    finally:
        rebuild.__defaults__ = defaults  # whatever happened, the rest of the session loads
        if hasattr(HParamsRecord, "planted"):
            del HParamsRecord.planted


def test_the_gpt_loader_refuses_a_pickle_that_changes_a_global_too(tmp_path):
    """The s1 (GPT) checkpoint goes through torch's weights-only unpickler, which builds only
    the types it allows: the same crafted BUILD is refused there as well."""
    from stream_server.models.gpt_sovits.t2s_checkpoint import T2SCheckpointError, read_checkpoint

    defaults = torch._utils._rebuild_tensor_v2.__defaults__
    path = tmp_path / "crafted.ckpt"
    _with_opcodes_first(FIXTURES / "t2s_tiny.ckpt", path, _CHANGES_A_GLOBAL["build_defaults"])
    try:
        with pytest.raises(T2SCheckpointError):
            read_checkpoint(path)
        assert torch._utils._rebuild_tensor_v2.__defaults__ == defaults
    finally:
        torch._utils._rebuild_tensor_v2.__defaults__ = defaults


@pytest.mark.parametrize("tag, version", [(b"00", "v1"), (b"02", "v3"), (b"03", "v3"), (b"04", "v4")])
def test_loader_refuses_version_tagged_files(tmp_path, tag, version):
    path = tmp_path / "tagged.pth"
    path.write_bytes(tag + CKPT.read_bytes()[2:])
    with pytest.raises(CheckpointError, match=rf"{version}.*this server serves GPT-SoVITS v2, v2Pro and v2ProPlus"):
        read_sovits_checkpoint(path)


@pytest.mark.parametrize("tag, version", [(b"05", "v2Pro"), (b"06", "v2ProPlus")])
def test_a_v2pro_header_on_v2_weights_is_refused(tmp_path, tag, version):
    """v2Pro/v2ProPlus are served, but their header on weights without the SV projection is no such model."""
    path = tmp_path / "tagged.pth"
    path.write_bytes(tag + CKPT.read_bytes()[2:])
    with pytest.raises(CheckpointError, match=rf"header says GPT-SoVITS {version} but the weights are of a v2 model"):
        read_sovits_checkpoint(path)


def test_loader_accepts_the_v2_header_tag(tmp_path):
    """Upstream's head2version maps b"01" to v2: the "PK" magic is restored and it loads."""
    path = tmp_path / "tagged_v2.pth"
    path.write_bytes(b"01" + CKPT.read_bytes()[2:])
    assert read_sovits_checkpoint(path).version == "v2"


def _save_with_upstream_hparams(obj_config: dict, weights: dict, path: Path, monkeypatch) -> None:
    """torch.save a checkpoint whose config pickles as upstream's utils.HParams."""
    utils = types.ModuleType("utils")

    class HParams:
        pass

    HParams.__module__, HParams.__qualname__ = "utils", "HParams"
    utils.HParams = HParams

    def to_hparams(d):
        h = HParams()
        h.__dict__.update({k: to_hparams(v) if isinstance(v, dict) else v for k, v in d.items()})
        return h

    monkeypatch.setitem(sys.modules, "utils", utils)
    torch.save({"weight": weights, "config": to_hparams(obj_config), "info": "x"}, path)


def test_loader_refuses_v1_weights(tmp_path, monkeypatch):
    """A v1 model is told apart by its 322-symbol phone embedding (the file is plain PK)."""
    path = tmp_path / "v1.pth"
    weights = {"enc_p.text_embedding.weight": torch.zeros(322, 192, dtype=torch.float16)}
    _save_with_upstream_hparams({"model": {"version": "v1"}, "data": {}}, weights, path, monkeypatch)
    monkeypatch.delitem(sys.modules, "utils")
    with pytest.raises(CheckpointError, match="v1.*this server serves GPT-SoVITS v2"):
        read_sovits_checkpoint(path)


def test_hparams_become_a_plain_record_without_importing_utils(tmp_path, monkeypatch):
    path = tmp_path / "cfg.pth"
    weights = {"enc_p.text_embedding.weight": torch.zeros(732, 192, dtype=torch.float16)}
    config = {"model": {"version": "v2"}, "data": {"hop_length": 640}}
    _save_with_upstream_hparams(config, weights, path, monkeypatch)
    monkeypatch.delitem(sys.modules, "utils")
    blob = restricted_torch_load(path.read_bytes())
    assert isinstance(blob["config"], HParamsRecord)
    assert hparams_to_dict(blob["config"]) == config
    assert "utils" not in sys.modules


# -- parity with upstream (fixture produced by GPT-SoVITS's own code) ---------------------------


def test_reference_spectrogram_matches_upstream(tiny, io):
    spec = tiny.spectrogram(io["ref_wav_32k"])
    assert spec.shape == (1025, 100)
    assert (spec - io["refer_spec"][0]).abs().max() < 1e-3  # measured 3.1e-5 (values up to 154)


def test_extract_latent_matches_upstream_exactly(tiny, io):
    assert torch.equal(tiny.extract_latent(io["ssl"]), io["latent_codes"])


@pytest.mark.parametrize("speed, key", [(1.0, "audio"), (1.25, "audio_speed_1_25")])
def test_decode_matches_upstream(tiny, io, speed, key):
    audio = tiny.decode(io["codes"], io["phones"], [io["refer_spec"]], noise_scale=0, speed=speed)
    assert audio.shape == io[key].shape
    # the fixture's audio peaks at 0.004, so 1e-3 would be loose; measured 1.9e-9 and 1.6e-9
    assert (audio - io[key]).abs().max() < 1e-6


def test_several_references_average_their_style(tiny, io):
    spec = io["refer_spec"][0]
    other = tiny.spectrogram(io["ref_wav_32k"].flip(0))
    ge = tiny.style([spec, other])
    assert torch.allclose(ge, (tiny.style(spec) + tiny.style(other)) / 2, atol=1e-6)
    one = tiny.decode(io["codes"], io["phones"], spec, noise_scale=0)
    two = tiny.decode(io["codes"], io["phones"], [spec, spec], noise_scale=0)
    assert torch.allclose(one, two, atol=1e-7)


def test_a_cached_style_vector_conditions_like_its_references(tiny, io):
    by_refs = tiny.condition(io["phones"], [io["refer_spec"]])
    by_ge = tiny.condition(io["phones"], ge=tiny.style(io["refer_spec"]))
    assert torch.equal(by_refs.ge, by_ge.ge) and torch.equal(by_refs.text, by_ge.text)
    with pytest.raises(ValueError):
        tiny.condition(io["phones"])


# -- streamed decoding ---------------------------------------------------------------------------


def _sentence(model, tokens: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, model.cfg.codebook_size, (tokens,), generator=g)
    phones = torch.randint(0, model.cfg.n_symbols, (tokens * 2 // 3,), generator=g)
    return codes, phones


def test_one_window_is_the_whole_decode(tiny, io):
    cond = tiny.condition(io["phones"], [io["refer_spec"]])
    whole = tiny.decode(io["codes"], io["phones"], [io["refer_spec"]], noise_scale=0)
    window = decode_window(tiny, io["codes"], cond, window_start=0, keep=(0, 30))
    assert torch.equal(whole, window)


def _join_jump(whole: torch.Tensor, streamed: torch.Tensor, joins: list[int]) -> float:
    """Largest extra sample-to-sample step at a join, relative to the largest step in `whole`."""
    dw, ds = whole.diff(), streamed.diff()
    return max(float((ds[j - 1] - dw[j - 1]).abs()) for j in joins) / float(dw.abs().max())


def _streamed_vs_whole(model, tokens: int, context: StreamContext, noise_scale: float = 0.0,
                       speed: float = 1.0):
    codes, phones = _sentence(model, tokens)
    cond = model.condition(phones, [torch.rand(1025, 60, generator=torch.Generator().manual_seed(2)) * 10])
    cfg = chunk_config(context)
    whole = decode_window(model, codes, cond, window_start=0, keep=(0, tokens), noise_scale=noise_scale,
                          noise=LatentNoise(torch.Generator().manual_seed(3)), speed=speed)
    noise = LatentNoise(torch.Generator().manual_seed(3))  # a fresh one: drawn in a different order
    chunks = decode_chunks(model, codes, cond, cfg, noise_scale=noise_scale, noise=noise, speed=speed)
    streamed = torch.cat(chunks)
    assert streamed.shape == whole.shape
    joins = list(np.cumsum([len(c) for c in chunks[:-1]]))
    return whole, streamed, joins


def test_default_chunking_is_the_engines():
    cfg = chunk_config()
    assert [cfg.chunk_size(i) for i in range(4)] == [6, 12, 24, 24]
    assert (cfg.left_context, cfg.right_context) == (default_context().left, default_context().right)


@pytest.mark.parametrize("noise_scale, speed", [(0.0, 1.0), (0.5, 1.0), (0.5, 1.25)])
def test_streamed_tiny_model_is_within_bound(tiny, noise_scale, speed):
    """Measured (100 tokens): SNR 68.5 / 66.3 / 66.5 dB, max abs error 1.4e-5 / 1.7e-5 / 1.7e-5
    (peak 0.004), join jump 1.0e-3 / 7e-4 / 6e-4."""
    whole, streamed, joins = _streamed_vs_whole(tiny, 100, default_context(), noise_scale, speed)
    assert snr_db(whole, streamed) >= 60
    assert _join_jump(whole, streamed, joins) < 5e-3


def test_streamed_real_size_model_is_within_bound(real_size):
    """Random weights, real s2 v2 dimensions. Measured (48 tokens): SNR 42.4 dB, max abs error
    2.9e-4 (peak 0.03), join jump 1.8e-3. The error is enc_p's attention not seeing the rest of
    the sentence (the flow and generator alone are > 100 dB down)."""
    whole, streamed, joins = _streamed_vs_whole(real_size, 48, default_context())
    assert snr_db(whole, streamed) >= 40
    assert _join_jump(whole, streamed, joins) < 1e-2


def test_streamed_noise_is_the_whole_decodes_noise(tiny):
    """Each window takes the whole decode's noise for its frames (measured SNR 63.0 dB); other
    noise would not match."""
    whole, streamed, _ = _streamed_vs_whole(tiny, 60, default_context(), noise_scale=1.0)
    assert snr_db(whole, streamed) >= 55
    codes, phones = _sentence(tiny, 60)
    cond = tiny.condition(phones, [torch.rand(1025, 60, generator=torch.Generator().manual_seed(2)) * 10])
    other = decode_window(tiny, codes, cond, window_start=0, keep=(0, 60), noise_scale=1.0,
                          noise=LatentNoise(torch.Generator().manual_seed(4)))
    assert snr_db(whole, other) < 40


def test_no_context_is_audibly_worse(tiny):
    """Guards the bound: without context the joins click."""
    whole, streamed, joins = _streamed_vs_whole(tiny, 60, StreamContext(0, 0))
    assert _join_jump(whole, streamed, joins) > 0.1
    assert snr_db(whole, streamed) < 50


def test_window_rejects_bad_keep_and_missing_noise(tiny, io):
    cond = tiny.condition(io["phones"], [io["refer_spec"]])
    with pytest.raises(ValueError, match="not inside"):
        decode_window(tiny, io["codes"][..., :10], cond, window_start=5, keep=(0, 8))
    with pytest.raises(ValueError, match="LatentNoise"):
        decode_window(tiny, io["codes"], cond, window_start=0, keep=(0, 8), noise_scale=0.5)


def test_generator_margin_trades_exactness_for_time(tiny):
    """The generator's receptive field makes windows exact; a smaller margin is close."""
    codes, phones = _sentence(tiny, 40)
    cond = tiny.condition(phones, [torch.rand(1025, 60, generator=torch.Generator().manual_seed(2)) * 10])
    exact = decode_window(tiny, codes, cond, window_start=0, keep=(10, 20))
    whole = decode_window(tiny, codes, cond, window_start=0, keep=(0, 40))
    assert torch.allclose(exact, whole[10 * 1280 : 20 * 1280], atol=1e-7)
    close = decode_window(tiny, codes, cond, window_start=0, keep=(10, 20), generator_margin=4)
    assert snr_db(exact, close) > 80
