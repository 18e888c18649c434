"""GPT-SoVITS v2Pro / v2ProPlus against upstream's own outputs (tests/fixtures/gpt_sovits_v2pro,
README there): the SoVITS files as upstream writes them, the Kaldi filterbank and the ERes2NetV2
speaker-verification embedding, whole-sentence decodes; then our streamed and batched windows with
the SV embedding, the SV model's loading and the voice settings that name it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from shared_fixtures import gpt_sovits_fixtures
from stream_server.config import GptSovitsVoiceSection
from stream_server.models.gpt_sovits.infer_yaml import voice_from_infer_yaml
from stream_server.models.gpt_sovits.loading import speaker_embedder
from stream_server.models.gpt_sovits.references import ReferenceBook
from stream_server.models.gpt_sovits.sovits import LatentNoise, load_sovits
from stream_server.models.gpt_sovits.sovits_checkpoint import CheckpointError, read_sovits_checkpoint
from stream_server.models.gpt_sovits.sovits_stream import chunk_config, decode_chunks, decode_window, snr_db
from stream_server.models.gpt_sovits.sovits_windows import WindowJob, decode_windows
from stream_server.models.gpt_sovits.sv_fbank import fbank, resample
from stream_server.models.gpt_sovits.sv_model import (
    UPSTREAM_SV_PATH,
    SpeakerModelError,
    load_speaker_encoder,
    speaker_encoder_from_state,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py: why

FIXTURES = Path(__file__).parent / "fixtures" / "gpt_sovits_v2pro"
INFO = json.loads((FIXTURES / "info.json").read_text())
VERSIONS = ("v2Pro", "v2ProPlus")


def _rebuild(version: str, bases: dict[int, bytes]) -> bytes:
    """The file upstream wrote, from its bytes not found in the shared v2 file (1) or, for
    v2ProPlus, the v2Pro file (2): (kind, offset, length) runs; kind 0 is the literal bytes."""
    data = np.load(FIXTURES / "v2pro_io.npz")
    literal = data[f"{version}_pth_literal"].tobytes()
    runs = data[f"{version}_pth_segments"].tolist()
    return b"".join(literal[a : a + n] if k == 0 else bases[k][a : a + n] for k, a, n in runs)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("v2pro")
    bases = {1: (gpt_sovits_fixtures() / "sovits_tiny.pth").read_bytes()}
    bases[2] = _rebuild("v2Pro", bases)
    paths = {}
    for version in VERSIONS:
        blob = bases[2] if version == "v2Pro" else _rebuild(version, bases)
        assert hashlib.sha256(blob).hexdigest() == INFO[version]["pth_sha256"]
        paths[version] = root / f"sovits_{version}.pth"
        paths[version].write_bytes(blob)
    return paths


@pytest.fixture(scope="module")
def io() -> dict[str, torch.Tensor]:
    data = {**np.load(gpt_sovits_fixtures() / "sovits_tiny_io.npz"), **np.load(FIXTURES / "v2pro_io.npz")}
    return {k: torch.from_numpy(v) for k, v in data.items() if not k.endswith(("_literal", "_segments"))}


@pytest.fixture(scope="module")
def models(files):
    return {version: load_sovits(path) for version, path in files.items()}


@pytest.fixture(scope="module")
def sv():
    return load_speaker_encoder(FIXTURES / "sv_tiny.ckpt")


def _refs(model, io, two: bool = False):
    specs = [model.spectrogram(io["ref_wav_32k"])]
    svs = [io["sv_emb"]]
    if two:
        specs.append(model.spectrogram(io["ref_b_wav_32k"]))
        svs.append(io["sv_emb_b"])
    return specs, svs


# -- files ------------------------------------------------------------------------------------------


def test_the_files_are_upstreams_and_load_with_their_versions(files):
    for version, tag in (("v2Pro", b"05"), ("v2ProPlus", b"06")):
        assert files[version].read_bytes()[:2] == tag
        ckpt = read_sovits_checkpoint(files[version])
        assert ckpt.version == ckpt.config.version == version
        assert ckpt.config.sv_channels == INFO["sv"]["sv_emb_shape"][1] == 640
    plus = read_sovits_checkpoint(files["v2ProPlus"]).config
    assert plus.upsample_kernel_sizes[0] == 20 and plus.upsample_initial_channel == 96


def test_the_header_tag_and_the_weights_must_agree(tmp_path, files):
    """A file with the zip's own "PK" (as older tools write it) is told by its sv_emb weights and
    its config's version; a v2 tag on v2Pro weights is refused."""
    blob = files["v2ProPlus"].read_bytes()
    plain = tmp_path / "plain.pth"
    plain.write_bytes(b"PK" + blob[2:])
    assert read_sovits_checkpoint(plain).version == "v2ProPlus"
    plain.write_bytes(b"01" + blob[2:])
    with pytest.raises(CheckpointError, match="header says GPT-SoVITS v2 but the weights are of a v2ProPlus model"):
        read_sovits_checkpoint(plain)


def test_v3_and_v4_are_still_refused_naming_what_is_served(tmp_path):
    infer = tmp_path / "tts_infer.yaml"
    infer.write_text(yaml.safe_dump({"custom": {"version": "v4", "t2s_weights_path": "a", "vits_weights_path": "b"}}))
    with pytest.raises(ValueError, match="GPT-SoVITS v4; this server serves GPT-SoVITS v2, v2Pro and v2ProPlus"):
        voice_from_infer_yaml(infer)


# -- speaker verification -------------------------------------------------------------------------


def test_fbank_equals_upstreams(io):
    """Upstream's kaldi.fbank(num_mel_bins=80, sample_frequency=16000, dither=0). Measured: 0.0."""
    ours = fbank(io["ref_wav_16k"])
    assert ours.shape == io["fbank"].shape == (198, 80)
    assert float((ours - io["fbank"]).abs().max()) <= 1e-5


def test_sv_embedding_equals_upstreams_forward3(sv, io):
    """Measured: max abs difference 6e-8 and 0 (values up to 0.54)."""
    assert sv.dim == 640
    for wav, expected in (("ref_wav_16k", "sv_emb"), ("ref_b_wav_16k", "sv_emb_b")):
        assert float((sv.embed(io[wav]) - io[expected]).abs().max()) <= 1e-5


def test_the_sv_loader_says_what_is_wrong(tmp_path, sv):
    with pytest.raises(SpeakerModelError, match="not found"):
        load_speaker_encoder(tmp_path / "nope.ckpt")
    state = torch.load(FIXTURES / "sv_tiny.ckpt", weights_only=True)
    del state["layer3_ds.weight"]
    with pytest.raises(SpeakerModelError, match="not an ERes2NetV2"):
        speaker_encoder_from_state(state)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(SpeakerModelError, match="not a readable torch state dict"):
        load_speaker_encoder(junk)


def test_the_16k_sv_input_is_resampled_as_torchaudio_does(io):
    """Upstream takes the 32 kHz reference to 16 kHz with torchaudio's Resample before the SV model;
    the fixture's 16 kHz clips are torchaudio 2.11's output. Measured: max abs difference 6e-8."""
    for wav32k, wav16k in (("ref_wav_32k", "ref_wav_16k"), ("ref_b_wav_32k", "ref_b_wav_16k")):
        ours = resample(io[wav32k], 32000, 16000)
        assert ours.shape == io[wav16k].shape
        assert float((ours - io[wav16k]).abs().max()) <= 1e-6


# -- decoding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("speed, key", [(1.0, "audio"), (1.25, "audio_speed_1_25")])
def test_decode_equals_upstreams(models, io, version, speed, key):
    """upstream decode(codes, phones, [spec], sv_emb=[sv]). Measured: max abs difference 1.3e-7
    (peaks 0.44 / 0.34); the SV term moves the audio by far more (next test)."""
    model = models[version]
    specs, svs = _refs(model, io)
    audio = model.decode(io[f"{version}_codes"], io["phones"], specs, noise_scale=0, speed=speed, sv_embs=svs)
    expected = io[f"{version}_{key}"]
    assert audio.shape == expected.shape
    assert float((audio - expected).abs().max()) <= 1e-5


def test_two_references_and_what_the_sv_embedding_does(models, io):
    """Each reference's style gets its own SV term before the mean (upstream's list of refer /
    sv_emb). Measured: 9e-8 from upstream; a zero SV embedding moves the audio by 4.1e-4, far
    above the parity tolerance (1e-5): the parity tests see a lost or misplaced SV term."""
    model = models["v2Pro"]
    specs, svs = _refs(model, io, two=True)
    codes, phones = io["v2Pro_codes"], io["phones"]
    audio = model.decode(codes, phones, specs, noise_scale=0, sv_embs=svs)
    assert float((audio - io["v2Pro_audio_two_refs"]).abs().max()) <= 1e-5
    other = model.decode(codes, phones, specs[:1], noise_scale=0, sv_embs=[torch.zeros_like(svs[0])])
    assert float((other - io["v2Pro_audio"]).abs().max()) > 1e-4
    with pytest.raises(ValueError, match="one speaker-verification embedding per reference"):
        model.style(specs, svs[:1])


def _cond(model, io, phones: int, sv_key: str, seed: int):
    g = torch.Generator().manual_seed(seed)
    return model.condition(torch.randint(0, model.cfg.n_symbols, (phones,), generator=g),
                           [model.spectrogram(io["ref_wav_32k"])], sv_embs=[io[sv_key]])


def test_streamed_v2pro_is_within_the_v2_bound(models, io):
    """As test_gpt_sovits_sovits' streamed tests: chunks (6, 12, 24 tokens, context as the engine)
    against one whole window, noise 0.5. Measured (v2Pro, 48 tokens): SNR 77.8 dB, max abs error
    6.5e-4 (peak 0.45)."""
    model = models["v2Pro"]
    codes = torch.randint(0, model.cfg.codebook_size, (48,), generator=torch.Generator().manual_seed(1))
    cond = _cond(model, io, 30, "sv_emb", 2)
    whole = decode_window(model, codes, cond, window_start=0, keep=(0, 48), noise_scale=0.5,
                          noise=LatentNoise(torch.Generator().manual_seed(3)))
    chunks = decode_chunks(model, codes, cond, chunk_config(), noise_scale=0.5,
                           noise=LatentNoise(torch.Generator().manual_seed(3)))
    streamed = torch.cat(chunks)
    assert streamed.shape == whole.shape
    assert snr_db(whole, streamed) >= 60


@pytest.mark.parametrize("version", VERSIONS)
def test_batched_windows_carry_each_rows_sv_embedding(models, io, version):
    """Rows of different speakers (SV embeddings) in one batch equal each decoded alone.
    Measured: max abs difference 1.2e-7 (both versions, one thread)."""
    model = models[version]
    rows = [(20, "sv_emb", 0, (0, 6)), (14, "sv_emb_b", 4, (4, 10)), (9, "sv_emb", 8, (10, 14))]
    codes = torch.randint(0, model.cfg.codebook_size, (len(rows), 14), generator=torch.Generator().manual_seed(4))

    def job(i: int) -> WindowJob:
        phones, sv_key, start, keep = rows[i]
        return WindowJob(_cond(model, io, phones, sv_key, 10 + i), start, keep,
                         LatentNoise(torch.Generator().manual_seed(20 + i)), 1.0)

    batched = decode_windows(model, codes, [job(i) for i in range(len(rows))], noise_scale=0.5)
    for i in range(len(rows)):
        alone = job(i)
        one = decode_window(model, codes[i], alone.cond, window_start=alone.window_start, keep=alone.keep,
                            noise_scale=0.5, noise=alone.noise)
        assert batched[i].shape == one.shape
        assert float((batched[i] - one).abs().max()) <= 1e-6
    assert not torch.allclose(_cond(model, io, 9, "sv_emb", 1).ge, _cond(model, io, 9, "sv_emb_b", 1).ge)


# -- where the SV model comes from ------------------------------------------------------------------


def test_tts_infer_yaml_of_v2pro_names_upstreams_sv_file(tmp_path):
    checkout = tmp_path / "GPT-SoVITS"
    (checkout / "GPT_SoVITS" / "configs").mkdir(parents=True)
    sv_file = checkout / UPSTREAM_SV_PATH
    sv_file.parent.mkdir(parents=True)
    sv_file.write_bytes(b"x")
    infer = checkout / "GPT_SoVITS" / "configs" / "tts_infer.yaml"
    custom = {"version": "v2ProPlus", "t2s_weights_path": "GPT_SoVITS/pretrained_models/s1v3.ckpt",
              "vits_weights_path": "GPT_SoVITS/pretrained_models/v2Pro/s2Gv2ProPlus.pth"}
    infer.write_text(yaml.safe_dump({"custom": custom}))
    assert voice_from_infer_yaml(infer)[0].sv_weights == str(sv_file)
    infer.write_text(yaml.safe_dump({"custom": {**custom, "version": "v2"}}))
    assert voice_from_infer_yaml(infer)[0].sv_weights is None


def test_a_v2pro_voice_without_its_sv_model_says_which_setting(models):
    section = GptSovitsVoiceSection(kind="gpt_sovits", t2s_weights="a", sovits_weights="b")
    model = models["v2Pro"]
    with pytest.raises(ValueError, match=r"voice 'pro': a GPT-SoVITS v2Pro model needs its speaker-verification "
                                         r"model: set sv_weights .*pretrained_eres2netv2w24s4ep4\.ckpt"):
        speaker_embedder(section, model, "pro", "cpu")
    with pytest.raises(ValueError, match="sv_weights"):
        ReferenceBook(None, model)
    with pytest.raises(ValueError, match="v2ProPlus model needs its speaker-verification model"):
        ReferenceBook(None, None).for_model(models["v2ProPlus"])  # a v2 voice given v2ProPlus weights
    with pytest.raises(ValueError, match=r"voice 'pro': speaker-verification model \(sv_weights\) .* not found"):
        speaker_embedder(section.model_copy(update={"sv_weights": "/nope.ckpt"}), model, "pro", "cpu")
    with_sv = section.model_copy(update={"sv_weights": str(FIXTURES / "sv_tiny.ckpt")})
    ok = speaker_embedder(with_sv, model, "pro", "cpu")
    assert ok is not None and ok.load().dim == 640


@pytest.mark.slow  # a whole voice: HuBERT, the GPT, the frontend
def test_a_v2pro_voice_from_tts_infer_yaml_speaks_with_its_speaker_embedding(tmp_path, files):
    import soundfile as sf

    import gpt_sovits_assets
    from stream_server.engine.requests import SynthesisOptions
    from stream_server.models.gpt_sovits.loading import load_gpt_sovits_backend

    assets = gpt_sovits_assets.build(tmp_path)
    assets["sovits"].write_bytes(files["v2Pro"].read_bytes())
    sv_file = tmp_path / UPSTREAM_SV_PATH
    sv_file.parent.mkdir(parents=True)
    sv_file.write_bytes((FIXTURES / "sv_tiny.ckpt").read_bytes())
    data = yaml.safe_load(assets["infer_yaml"].read_text())
    data["custom"]["version"] = "v2Pro"
    assets["infer_yaml"].write_text(yaml.safe_dump(data))
    section, _ = voice_from_infer_yaml(assets["infer_yaml"], ref_audio=str(assets["ref"]),
                                       prompt_text=gpt_sovits_assets.PROMPT_TEXT)
    backend = load_gpt_sovits_backend("pro", section, max_slots=2, device="cpu")
    # the default reference's style: its spectrogram and its SV embedding (the clip is at 32 kHz)
    wav, rate = sf.read(assets["ref"], dtype="float32")
    clip = torch.from_numpy(wav)
    sovits = backend.sovits
    expected = sovits.style(sovits.spectrogram(clip), load_speaker_encoder(sv_file).embed(resample(clip, rate, 16000)))
    assert torch.allclose(backend.references.get(None).style, expected, atol=1e-6)
    audio = backend.synthesize_offline("Hello.", SynthesisOptions(seed=1, top_k=1))
    assert audio.size > 0 and np.isfinite(audio).all()
