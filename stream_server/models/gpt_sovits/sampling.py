"""Token sampling of the GPT-SoVITS T2S decoder, batched with per-row parameters.

Upstream's order, per row: repetition penalty on every token already in the sequence (prompt
included; each distinct token once: negative logits x p, positive / p) -> top-p -> / temperature
-> top-k -> softmax -> ``argmax(probs / q)`` with q ~ Exponential(1) (a sample from ``probs``).
Each row draws its exponentials from its own ``torch.Generator``, so a row's token depends only
on its own logits, parameters and generator, never on the other rows of the batch.

Upstream's top-p removes every token whose cumulative probability (itself included) exceeds
top_p, except the most likely one; unlike the common "nucleus" variant it does not keep the
token that crosses the threshold. We do the same.

Shape legend: B rows, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

NEG_INF = float("-inf")


@dataclass(frozen=True)
class SamplingParams:
    """One request's sampling parameters (defaults: upstream's api_v2 request defaults)."""

    top_k: int = 15  # <= 0: no top-k filter
    top_p: float = 1.0  # 1.0: no top-p filter
    temperature: float = 1.0
    repetition_penalty: float = 1.35  # 1.0: none

    def __post_init__(self) -> None:
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not self.temperature >= 0.0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not self.repetition_penalty > 0.0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")


@dataclass
class RowParams:
    """Sampling parameters of a batch, one entry per row (all [B])."""

    top_k: Tensor  # long, already clamped to [1, V]
    top_p: Tensor  # float32
    temperature: Tensor  # float32, already clamped to >= 1e-5 (as upstream)
    repetition_penalty: Tensor  # float32

    @classmethod
    def stack(cls, params: Sequence[SamplingParams], vocab: int, device: torch.device | str | None = None) -> RowParams:
        def f32(values: list[float]) -> Tensor:
            return torch.tensor(values, dtype=torch.float32, device=device)

        top_k = [p.top_k if 0 < p.top_k <= vocab else vocab for p in params]
        return cls(
            top_k=torch.tensor(top_k, dtype=torch.long, device=device),
            top_p=f32([p.top_p for p in params]),
            temperature=f32([max(p.temperature, 1e-5) for p in params]),
            repetition_penalty=f32([p.repetition_penalty for p in params]),
        )

    def select(self, idx: Tensor) -> RowParams:
        """Rows ``idx`` [B'] of these parameters."""
        return RowParams(*(t.index_select(0, idx) for t in (self.top_k, self.top_p, self.temperature,
                                                             self.repetition_penalty)))


def apply_repetition_penalty(logits: Tensor, seen: Tensor, penalty: Tensor) -> Tensor:
    """logits [B, V], seen [B, V] bool (tokens in the sequence), penalty [B] -> [B, V]."""
    p = penalty[:, None]  # [B, 1]
    penalised = torch.where(logits < 0, logits * p, logits / p)
    return torch.where(seen, penalised, logits)


def top_p_top_k_temperature(logits: Tensor, rows: RowParams) -> Tensor:
    """logits [B, V] (penalised) -> [B, V]: top-p, then / temperature, then top-k; the removed
    entries are -inf. Rows with top_p >= 1 skip top-p, as upstream (its cumsum may round past 1)."""
    sorted_l, order = torch.sort(logits, dim=-1, descending=True)  # [B, V]
    cum = torch.softmax(sorted_l, dim=-1).cumsum(dim=-1)
    drop_sorted = (cum > rows.top_p[:, None]) & (rows.top_p < 1.0)[:, None]
    drop_sorted[:, 0] = False  # keep at least the most likely token
    drop = torch.zeros_like(drop_sorted).scatter_(1, order, drop_sorted)
    t = rows.temperature[:, None]
    scaled = logits.masked_fill(drop, NEG_INF) / t  # [B, V]
    # top-k pivot: the k-th largest value after top-p and temperature (both keep the sort order)
    kth = sorted_l.masked_fill(drop_sorted, NEG_INF).gather(1, rows.top_k[:, None] - 1) / t  # [B, 1]
    return torch.where(scaled < kth, NEG_INF, scaled)


def draw(probs: Tensor, generators: Sequence[torch.Generator], widths: Sequence[int]) -> Tensor:
    """probs [B, V] -> tokens [B] long: argmax(probs / q), q ~ Exp(1) from row b's generator.

    Row b draws ``widths[b]`` exponentials (upstream draws one per entry of the logits it
    samples from, which is V - 1 while EOS is cut off), the rest of q is 1 (those probs are 0).
    """
    q = torch.ones_like(probs)
    for b, (gen, width) in enumerate(zip(generators, widths)):
        q[b, :width].exponential_(1.0, generator=gen)
    return torch.argmax(probs / q, dim=-1)


def sample_tokens(
    logits: Tensor, seen: Tensor, rows: RowParams, generators: Sequence[torch.Generator], widths: Sequence[int]
) -> tuple[Tensor, Tensor]:
    """One sampling step: logits [B, V] float32, seen [B, V] bool -> (tokens [B] long,
    penalised logits [B, V]; upstream's EOS test looks at the argmax of these)."""
    penalised = apply_repetition_penalty(logits, seen, rows.repetition_penalty)
    probs = torch.softmax(top_p_top_k_temperature(penalised, rows), dim=-1)
    return draw(probs, generators, widths), penalised
