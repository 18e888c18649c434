"""Out-of-vocabulary English words -> ARPAbet with g2p_en's shipped neural model.

Upstream predicts OOV words with ``g2p_en.G2p.predict``. Importing ``g2p_en`` downloads NLTK
data, so the package is never imported here: only its weight file ``checkpoint20.npz`` is
read (located with importlib, nothing executed) and run by this small numpy re-implementation
of the same model: a GRU encoder over the letters, then a greedy GRU decoder of at most 20
phones (embedding 64, hidden 128, PyTorch's GRU gate layout r, z, n).
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GRAPHEMES = ("<pad>", "<unk>", "</s>", *"abcdefghijklmnopqrstuvwxyz")
# g2p_en's output vocabulary: 4 specials then 70 ARPAbet symbols (its own order; note "UW").
PHONEMES = ("<pad>", "<unk>", "<s>", "</s>", *(
    "AA0 AA1 AA2 AE0 AE1 AE2 AH0 AH1 AH2 AO0 AO1 AO2 AW0 AW1 AW2 AY0 AY1 AY2 B CH D DH "
    "EH0 EH1 EH2 ER0 ER1 ER2 EY0 EY1 EY2 F G HH IH0 IH1 IH2 IY0 IY1 IY2 JH K L M N NG "
    "OW0 OW1 OW2 OY0 OY1 OY2 P R S SH T TH UH0 UH1 UH2 UW UW0 UW1 UW2 V W Y Z ZH"
).split())
_UNK_G, _EOS_G = 1, 2
_BOS_P, _EOS_P = 2, 3
MAX_PHONES = 20


class OovModelMissing(RuntimeError):
    """g2p_en's weight file could not be found (the ``g2p-en`` package is not installed)."""


@dataclass(frozen=True)
class _Gru:
    w_ih: np.ndarray  # [3H, in]
    w_hh: np.ndarray  # [3H, H]
    b_ih: np.ndarray
    b_hh: np.ndarray

    def step(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        gi = x @ self.w_ih.T + self.b_ih
        gh = h @ self.w_hh.T + self.b_hh
        H = h.shape[-1]
        r = _sigmoid(gi[..., :H] + gh[..., :H])
        z = _sigmoid(gi[..., H:2 * H] + gh[..., H:2 * H])
        n = np.tanh(gi[..., 2 * H:] + r * gh[..., 2 * H:])
        return (1.0 - z) * n + z * h


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def weights_path() -> Path:
    spec = importlib.util.find_spec("g2p_en")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise OovModelMissing("package 'g2p-en' is not installed: no OOV model (pip install g2p-en==2.1.0)")
    path = Path(next(iter(spec.submodule_search_locations))) / "checkpoint20.npz"
    if not path.is_file():
        raise OovModelMissing(f"g2p_en's weight file is missing: {path}")
    return path


class OovModel:
    """Greedy grapheme-to-phoneme seq2seq, numerically the same as ``g2p_en.G2p.predict``."""

    def __init__(self, path: Path):
        with np.load(path, allow_pickle=False) as w:
            self.enc_emb = w["enc_emb"]
            self.dec_emb = w["dec_emb"]
            self.enc = _Gru(w["enc_w_ih"], w["enc_w_hh"], w["enc_b_ih"], w["enc_b_hh"])
            self.dec = _Gru(w["dec_w_ih"], w["dec_w_hh"], w["dec_b_ih"], w["dec_b_hh"])
            self.fc_w, self.fc_b = w["fc_w"], w["fc_b"]
        self._g2i = {g: i for i, g in enumerate(GRAPHEMES)}

    def predict(self, word: str) -> list[str]:
        """Phones for ``word`` (lower-case letters; other characters count as <unk>)."""
        ids = [self._g2i.get(c, _UNK_G) for c in word] + [_EOS_G]
        h = np.zeros((1, self.enc.w_hh.shape[1]), np.float32)
        for i in ids:
            h = self.enc.step(self.enc_emb[i][None], h)
        out: list[str] = []
        x = self.dec_emb[_BOS_P][None]
        for _ in range(MAX_PHONES):
            h = self.dec.step(x, h)
            pred = int(np.argmax(h @ self.fc_w.T + self.fc_b))
            if pred == _EOS_P:
                break
            out.append(PHONEMES[pred])
            x = self.dec_emb[pred][None]
        return out


@functools.lru_cache(maxsize=1)
def load_oov_model() -> OovModel:
    return OovModel(weights_path())
