"""The files api_v2's clients name (a reference clip, GPT or SoVITS weights): what naming one may
cost the server and what the answer tells about it. A clip is checked (a regular file, its size,
its header's length) before it is read whole or hashed; a file that is missing, unreadable or not
what was asked for gets one answer that quotes none of it; and nothing a client names makes the
loaders fail with anything but that answer (an HTTP 400, never a 500)."""

from __future__ import annotations

import os
import re
import tracemalloc
from pathlib import Path

import pytest
import torch
import yaml

import gpt_sovits_assets
from shared_fixtures import gpt_sovits_fixtures
from stream_server.models.gpt_sovits.infer_yaml import voice_from_infer_yaml
from stream_server.models.gpt_sovits.reference import MAX_CLIP_BYTES, ReferenceError
from stream_server.models.gpt_sovits.references import ReferenceBook
from stream_server.models.gpt_sovits.sovits_checkpoint import CheckpointError, read_sovits_checkpoint
from stream_server.models.gpt_sovits.t2s_checkpoint import T2SCheckpointError, read_checkpoint

SECRET = b"root:SECRET-FIRST-BYTES:0:0\n" * 100  # what must not come back in an answer


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    """Paths that are not a usable clip or checkpoint, each in its own way."""
    big = tmp_path / "huge.bin"
    with open(big, "wb") as f:  # sparse: 434 MB that take no disk
        f.truncate(434 << 20)
    text = tmp_path / "passwd"
    text.write_bytes(SECRET)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # opening it would block: it must never be opened
    return {"missing": tmp_path / "missing.wav", "directory": tmp_path, "text": text, "huge": big,
            "fifo": fifo, "device": Path("/dev/zero"), "nul": Path("a\0b")}


def test_a_named_clip_is_checked_before_it_is_read_or_hashed_and_says_nothing_of_it(files, tmp_path):
    made: list[Path] = []
    book = ReferenceBook(lambda path, text, lang, sovits: made.append(path), sovits=None)
    answers = set()
    tracemalloc.start()
    try:
        for name, path in files.items():
            tracemalloc.reset_peak()
            with pytest.raises(ReferenceError) as refused:
                book.prepare(path, "", "en")
            assert tracemalloc.get_traced_memory()[1] < 4 << 20, name  # not read whole (434 MB)
            answers.add(str(refused.value))
    finally:
        tracemalloc.stop()
    assert len(answers) == 1 and not made  # one answer, whatever the path holds
    (answer,) = answers
    assert "SECRET" not in answer and str(tmp_path) not in answer and "3-10 s" in answer
    assert files["huge"].stat().st_size > MAX_CLIP_BYTES
    short = gpt_sovits_assets.reference_clip(tmp_path / "short.wav", seconds=2.0)
    with pytest.raises(ReferenceError, match="3-10 s long, not 2.00 s"):  # audio: its length is the reason
        book.prepare(short, "", "en")
    assert not made
    clip = gpt_sovits_assets.reference_clip(tmp_path / "clip.wav", seconds=4.0)
    book.prepare(clip, "", "en")
    assert made == [clip]


@pytest.mark.parametrize("read, error", [(read_checkpoint, T2SCheckpointError),
                                         (read_sovits_checkpoint, CheckpointError)])
def test_a_file_that_is_no_checkpoint_gets_one_answer_that_quotes_none_of_it(files, read, error):
    answers = set()
    for path in files.values():
        with pytest.raises(error) as refused:
            read(path)
        answers.add(str(refused.value).removeprefix(f"{path}: "))
    (answer,) = answers
    assert "SECRET" not in answer and "b'ro" not in answer and "load key" not in answer, answer
    fixtures = gpt_sovits_fixtures()
    assert read_checkpoint(fixtures / "t2s_tiny.ckpt").config.phoneme_vocab_size == 732
    assert read_sovits_checkpoint(fixtures / "sovits_tiny.pth").version == "v2"


@pytest.mark.parametrize("tag, version", [(b"02", "v3"), (b"04", "v4 (LoRA)")])
def test_sovits_files_of_v3_or_v4_say_what_is_served(tmp_path, tag, version):
    """A v3/v4 file (upstream's header tag, or its cfm weights) is refused naming both versions."""
    tagged = tmp_path / "tagged.pth"
    tagged.write_bytes(tag + (gpt_sovits_fixtures() / "sovits_tiny.pth").read_bytes()[2:])
    served = rf"GPT-SoVITS {re.escape(version)} model; this server serves GPT-SoVITS v2"
    with pytest.raises(CheckpointError, match=served):
        read_sovits_checkpoint(tagged)
    v4 = tmp_path / "v4.pth"
    weights = {"enc_p.text_embedding.weight": torch.zeros(732, 2), "cfm.estimator.w": torch.zeros(2)}
    torch.save({"weight": weights, "config": {"model": {"version": "v4"}}, "info": "v4"}, v4)
    with pytest.raises(CheckpointError, match="a GPT-SoVITS v4 model; this server serves GPT-SoVITS v2"):
        read_sovits_checkpoint(v4)


@pytest.mark.parametrize("version", ["v3", "v4"])
def test_a_tts_infer_yaml_of_v3_or_v4_says_what_is_served(tmp_path, version):
    infer = tmp_path / "tts_infer.yaml"
    custom = {"version": version, "t2s_weights_path": "a", "vits_weights_path": "b"}
    infer.write_text(yaml.safe_dump({"custom": custom}))
    with pytest.raises(ValueError, match=f"GPT-SoVITS {version}; this server serves GPT-SoVITS v2"):
        voice_from_infer_yaml(infer)


def m4a(path: Path, wav: Path, channels: int = 1) -> Path:
    """`wav` as AAC in an MP4 container (what phones record), written by PyAV; two equal channels
    when `channels` is 2."""
    import av
    import numpy as np
    import soundfile as sf

    audio, rate = sf.read(wav, dtype="float32")
    planes = np.tile(audio, (channels, 1)).astype(np.float32)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate, layout="mono" if channels == 1 else "stereo")
        frame = av.AudioFrame.from_ndarray(planes, format="fltp", layout=stream.layout.name)
        frame.sample_rate, frame.pts = rate, 0  # timed: the muxer's edit list then hides AAC's priming
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path


@pytest.mark.parametrize("channels", [1, 2])
def test_an_m4a_clip_is_read_as_upstream_reads_it(tmp_path, channels):
    """Upstream loads references with librosa, which reads m4a through FFmpeg; so do we (PyAV),
    after the same checks on its header's length."""
    import numpy as np
    import soundfile as sf

    from stream_server.models.gpt_sovits.reference import check_clip, read_clip

    wav = gpt_sovits_assets.reference_clip(tmp_path / "clip.wav", seconds=4.0)
    clip = m4a(tmp_path / "clip.m4a", wav, channels)
    check_clip(clip)
    audio, rate = read_clip(clip)
    want, _ = sf.read(wav, dtype="float32")
    assert rate == 32000 and audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - len(want)) <= 1024  # whole AAC frames; the priming is trimmed (edit list)
    n = min(len(audio), len(want))
    assert np.corrcoef(audio[:n], want[:n])[0, 1] > 0.9  # lossy, but the same clip, channels averaged
    short = m4a(tmp_path / "short.m4a", gpt_sovits_assets.reference_clip(tmp_path / "short.wav", seconds=2.0))
    with pytest.raises(ReferenceError, match="3-10 s long"):
        check_clip(short)
