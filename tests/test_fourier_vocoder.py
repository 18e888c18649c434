"""The AR voice's own vocoders (iSTFT and Fourier) keep the streaming contract: the receptive field
is what they say, windows with that much context decode their kept frames exactly as the whole
sentence, padded rows decode as alone (Fourier), the iSTFT one starts from the teacher's stages,
and a weights file round-trips."""

from __future__ import annotations

import pytest
import torch

from stream_server.engine.backend import keep_frames
from stream_server.engine.chunking import ChunkConfig, chunk_bounds, next_chunk
from stream_server.models.ar_latent.fourier_vocoder import FourierVocoder, FourierVocoderConfig
from stream_server.models.ar_latent.istft_vocoder import IstftVocoder, IstftVocoderConfig
from stream_server.models.ar_latent.vocoder_weights import load_vocoder, read_vocoder, save_vocoder
from stream_server.models.piper_vits.vits_decoder import HifiganConfig, HifiganGenerator

HOP = 256


def close(a: torch.Tensor, b: torch.Tensor, rel: float) -> bool:
    """Equal up to float rounding, relative to the signal's scale (random weights are loud)."""
    return a.shape == b.shape and float((a - b).abs().max()) <= rel * float(b.abs().max())


SMALL_HIFIGAN = HifiganConfig(in_channels=192, base_channels=32, up_rates=(8, 8, 4), up_kernels=(16, 16, 8))


def random_istft() -> IstftVocoder:
    torch.manual_seed(0)
    return IstftVocoder.from_teacher(HifiganGenerator(SMALL_HIFIGAN)).eval()


def random_vocoder(**overrides) -> FourierVocoder:
    """Random weights large enough that every tap of the receptive field matters."""
    torch.manual_seed(0)
    model = FourierVocoder(FourierVocoderConfig(**overrides)).eval()
    with torch.no_grad():
        for layer in model.layers:
            layer.scale.fill_(1.0)
        model.head.weight.mul_(4.0)
    return model


@pytest.mark.parametrize(
    "make", [random_vocoder, lambda: random_vocoder(kernel=3, right_reach=0, layers=3),
             lambda: random_vocoder(right_reach=2), random_istft],
)
def test_receptive_field_is_exact(make):
    model = make()
    left, right = model.receptive_field_frames()
    z = torch.randn(1, 192, 80, requires_grad=True)
    s = 40
    model(z)[0, s * HOP : (s + 1) * HOP].abs().sum().backward()
    touched = (z.grad[0].abs().sum(0) > 0).nonzero().flatten().tolist()
    assert touched == list(range(s - left, s + right + 1))


@pytest.mark.parametrize("make", [random_vocoder, random_istft])
def test_windows_with_context_equal_the_whole_decode(make):
    model = make()
    left, right = model.receptive_field_frames()
    cfg = ChunkConfig(12, 40, left, right)
    z = torch.randn(1, 192, 150)
    with torch.no_grad():
        whole = model(z)[0]
        pieces = []
        for index, (start, _) in enumerate(chunk_bounds(150, cfg)):
            span = next_chunk(cfg, index, start, 150, 150)
            audio = model(z[:, :, span.window_start : span.window_end])
            pieces.append(keep_frames(audio, [span], HOP)[0])
        streamed = torch.cat(pieces)
    assert close(streamed, whole, 1e-5)  # (that less context would not do: the test above)


def test_a_padded_row_decodes_as_alone():
    model = random_vocoder()
    a, b = torch.randn(1, 192, 50), torch.randn(1, 192, 30)
    batch = torch.zeros(2, 192, 60)
    batch[0, :, 10:] = a[0]  # left padding, as at a sentence's start in training
    batch[1, :, :30] = b[0]  # right padding
    mask = torch.zeros(2, 60, dtype=torch.bool)
    mask[0, 10:] = True
    mask[1, :30] = True
    with torch.no_grad():
        out = model(batch, mask)
        assert close(out[0, 10 * HOP :], model(a)[0], 1e-5)
        assert close(out[1, : 30 * HOP], model(b)[0], 1e-5)


def test_the_istft_vocoder_starts_from_the_teachers_stages():
    torch.manual_seed(1)
    teacher = HifiganGenerator(SMALL_HIFIGAN).eval()
    model = IstftVocoder.from_teacher(teacher)
    assert model.cfg.sub_hop == 4 and model.cfg.n_fft == 16 and model.hop == 256
    z = torch.randn(1, 192, 12)
    with torch.no_grad():
        ours, theirs = model.pre(z), teacher.pre(z)
        for mine, other in zip(model.stages, teacher.stages):
            ours, theirs = mine(ours), other(theirs)
    assert torch.equal(ours, theirs)
    with pytest.raises(ValueError, match="single-speaker"):
        IstftVocoder(IstftVocoderConfig(hifigan=HifiganConfig(speaker_channels=8)))


@pytest.mark.parametrize("make", [lambda: random_vocoder(dim=128, layers=2), random_istft])
def test_weights_round_trip(tmp_path, make):
    model = make()
    path = tmp_path / "v.pt"
    save_vocoder(model, path, meta={"steps": 3})
    arch, cfg, state, meta = read_vocoder(path)
    assert cfg == model.cfg and meta == {"steps": 3} and type(load_vocoder(path)) is type(model)
    assert all(t.dtype == torch.float16 for t in state.values())
    loaded = load_vocoder(path)
    z = torch.randn(1, 192, 20)
    with torch.no_grad():
        assert close(loaded(z), model(z), 1e-2)
    torch.save({"not": "a vocoder"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an AR vocoder"):
        read_vocoder(tmp_path / "other.pt")
