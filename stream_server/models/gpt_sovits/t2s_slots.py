"""Per-slot serving state of a T2SModel: continuous batching of GPT-SoVITS semantic-token decoding.

Each slot holds one request: its keys/values in a static cache (``StaticKVCache``, one position
per cached xy position), the logits it samples from next, the set of tokens already in its
sequence (for the repetition penalty), its sampling parameters and its own ``torch.Generator``.

Decoding follows upstream's ``infer_panel_naive``:

* ``prefill`` runs phones + BERT features + prompt tokens (S = P + Y positions) and keeps the
  logits of the last position: the first token is sampled from them (no network pass).
* each ``decode_step`` first runs the network on every slot's previous token (slots that were
  just prefilled skip this), then samples one token per slot.
* EOS is cut off from the logits for the first 11 sampled tokens; a slot stops when its sampled
  token or the argmax of its (penalised) logits is EOS, and then emits nothing that step; it also
  stops once it sampled more than ``early_stop_num`` tokens (that last token is emitted) or
  ``max_new_tokens`` tokens.

Positions: prompt position i sits in cache position i; generated token n (0-based) is fed at
cache position S + n and audio position Y + n, exactly where upstream's growing cache puts it.

Shape legend: N slots, V vocabulary, B slots in a step, P phones, Y prompt tokens, E bert_dim.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from ...engine.kv_cache import CacheCapacityError, SlotsLike, StaticKVCache
from .sampling import NEG_INF, RowParams, SamplingParams, sample_tokens
from .t2s_model import T2SModel

EOS_BLOCKED_STEPS = 11  # upstream: no EOS before the 12th sampled token (0.44 s)
MAX_NEW_TOKENS = 1500  # upstream's loop bound


class SlotState(enum.Enum):
    FREE = "free"
    PREFILLED = "prefilled"  # next decode_step samples from the prefill's logits
    RUNNING = "running"  # next decode_step feeds the last sampled token first
    FINISHED = "finished"  # stopped; release() before reuse


class StepResult(NamedTuple):
    """One decode step for B slots (in the order they were asked for).

    tokens [B] long: the token each slot emits this step, or EOS (``T2SSlots.eos``) where it
    emits none (it stopped on EOS). finished [B] bool: the slot is done (no more steps).
    """

    tokens: Tensor
    finished: Tensor


class T2SSlots:
    """Serving state for ``max_slots`` concurrent requests on one T2SModel.

    ``max_len``: cache positions per slot; a request needs S + its token budget - 1 of them
    (prefill refuses one that does not fit). K/V memory: 2 x n_layers x dim values per position
    and slot, 96 KiB in float32 at s1v2 size (2048 positions: ~200 MB per slot). ``dtype``: K/V
    storage dtype. ``span_bucket``, ``window_ratio``: see ``StaticKVCache``. ``max_new_tokens``:
    upstream's 1500-step bound.
    """

    def __init__(self, model: T2SModel, max_slots: int, max_len: int = 2048,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
                 span_bucket: int = 64, window_ratio: float = 2.0, max_new_tokens: int = MAX_NEW_TOKENS) -> None:
        cfg = model.cfg
        device = next(model.parameters()).device if device is None else torch.device(device)
        self.model, self.eos, self.max_new_tokens = model, cfg.eos, max_new_tokens
        self.cache = StaticKVCache(cfg.n_layers, max_slots, cfg.n_heads, max_len, cfg.head_dim,
                                   device, dtype, span_bucket, window_ratio)
        V = cfg.vocab_size
        self._logits = torch.zeros(max_slots, V, device=device)  # [N, V] float32: latest raw logits
        self._seen = torch.zeros(max_slots, V, dtype=torch.bool, device=device)  # [N, V]
        self._last = torch.zeros(max_slots, dtype=torch.long, device=device)  # [N] last sampled token
        self._rows = RowParams.stack([SamplingParams()] * max_slots, V, device)  # [N] each
        self._gen: list[torch.Generator | None] = [None] * max_slots
        self._state = [SlotState.FREE] * max_slots
        self._n_text = [0] * max_slots  # P: cache position - P = audio position
        self._budget = [0] * max_slots  # most tokens the slot may sample
        self._tokens: list[list[int]] = [[] for _ in range(max_slots)]  # emitted tokens

    @property
    def max_slots(self) -> int:
        return self.cache.max_slots

    # ---- lifecycle -----------------------------------------------------------

    @torch.inference_mode()
    def prefill(self, slot: int, phones: Tensor, bert: Tensor, prompt: Tensor,
                sampling: SamplingParams = SamplingParams(), seed: int | None = None,
                early_stop_num: int = -1, generator: torch.Generator | None = None) -> None:
        """Load a request into free ``slot``: phones [P] (prompt + target phones), bert [E, P],
        prompt [Y] semantic tokens of the reference audio (Y = 0: no reference). ``seed``: the
        slot's generator (None: a random one), unless ``generator`` is given: the slot then draws
        from that one (shared with other requests; upstream draws from torch's global one).
        ``early_stop_num``: -1 none, else stop after more than that many tokens."""
        self.cache.slot_list([slot])
        if self._state[slot] is not SlotState.FREE:
            raise ValueError(f"slot {slot} is {self._state[slot].value}; release it first")
        phones, bert, prompt = self._check_inputs(phones, bert, prompt)
        S = phones.shape[0] + prompt.shape[0]
        budget = self._token_budget(early_stop_num)
        if S + budget - 1 > self.cache.max_steps:
            raise CacheCapacityError(f"request needs {S} prompt + {budget - 1} decode positions > "
                                     f"max_len={self.cache.max_steps} (raise T2SSlots max_len)")
        self._reset(slot)
        logits, kv = self.model(phones, bert, prompt)  # [V], L x [H, S, Dh]
        for layer, (k, v) in enumerate(kv):
            self.cache.write_range(layer, slot, 0, k, v)
        self.cache.set_position(slot, S)
        self._logits[slot] = logits.float()
        self._seen[slot, prompt] = True
        self._set_params(slot, sampling, seed, generator)
        self._n_text[slot], self._budget[slot] = phones.shape[0], budget
        self._state[slot] = SlotState.PREFILLED

    @torch.inference_mode()
    def decode_step(self, slots: SlotsLike) -> StepResult:
        """One token for each of ``slots`` (distinct, any order, each at its own position)."""
        sl = self._check_step(slots)
        self._run_network([s for s in sl if self._state[s] is SlotState.RUNNING])
        idx = torch.tensor(sl, dtype=torch.long, device=self._logits.device)  # [B]
        tokens, eos = self._sample(sl, idx)  # [B] long, [B] bool
        keep = ~eos
        # no boolean-mask indexing (it reads the mask on the host): rows that stopped keep their state
        self._seen[idx, tokens] = self._seen[idx, tokens] | keep
        self._last[idx] = torch.where(keep, tokens, self._last[idx])
        # the step's one host read: the engine needs the tokens and stops now
        out, stopped = torch.stack((tokens.masked_fill(eos, self.eos), eos.long())).cpu()
        finished = [self._update(s, t, e) for s, t, e in zip(sl, out.tolist(), stopped.bool().tolist())]
        return StepResult(out, torch.tensor(finished, dtype=torch.bool))

    @torch.inference_mode()
    def release(self, slot: int) -> None:
        """Free ``slot`` (finished or cancelled) and clear its state."""
        self.cache.slot_list([slot])
        self._reset(slot)

    # ---- queries ---------------------------------------------------------------

    def state(self, slot: int) -> SlotState:
        return self._state[slot]

    def generated(self, slot: int) -> list[int]:
        """Tokens the slot emitted so far (EOS never included)."""
        return list(self._tokens[slot])

    def last_logits(self, slot: int) -> Tensor:
        """[V] float32 copy of the raw logits (before EOS cut and penalty) the slot's latest token
        was sampled from; right after prefill, those its first token will be sampled from."""
        return self._logits[slot].clone()

    def free_slots(self) -> list[int]:
        return [s for s, st in enumerate(self._state) if st is SlotState.FREE]

    # ---- internals -------------------------------------------------------------

    def _check_inputs(self, phones: Tensor, bert: Tensor, prompt: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        cfg, dev = self.model.cfg, self._logits.device
        phones, prompt = phones.reshape(-1).long().to(dev), prompt.reshape(-1).long().to(dev)
        bert = bert.reshape(bert.shape[-2:]).to(dev)  # [1, E, P] or [E, P] -> [E, P]
        if phones.numel() == 0 or bert.shape != (cfg.bert_dim, phones.numel()):
            raise ValueError(f"need phones [P>=1] and bert [{cfg.bert_dim}, P]; got {tuple(phones.shape)}, "
                             f"{tuple(bert.shape)}")
        if phones.min() < 0 or phones.max() >= cfg.phoneme_vocab_size:
            raise ValueError(f"phone ids must be in [0, {cfg.phoneme_vocab_size})")
        if prompt.numel() and (prompt.min() < 0 or prompt.max() >= cfg.eos):
            raise ValueError(f"prompt tokens must be semantic codes in [0, {cfg.eos})")
        return phones, bert, prompt

    def _token_budget(self, early_stop_num: int) -> int:
        if early_stop_num < -1:
            raise ValueError(f"early_stop_num must be -1 (off) or >= 0, got {early_stop_num}")
        return self.max_new_tokens if early_stop_num == -1 else min(self.max_new_tokens, early_stop_num + 1)

    def _set_params(self, slot: int, sampling: SamplingParams, seed: int | None,
                    generator: torch.Generator | None) -> None:
        one = RowParams.stack([sampling], self.model.cfg.vocab_size, self._logits.device)
        for name in ("top_k", "top_p", "temperature", "repetition_penalty"):
            getattr(self._rows, name)[slot] = getattr(one, name)[0]
        if generator is None:
            generator = torch.Generator(device=self._logits.device)
            generator.manual_seed(secrets.randbits(63) if seed is None else seed)
        self._gen[slot] = generator

    def _check_step(self, slots: SlotsLike) -> list[int]:
        sl = self.cache.slot_list(slots)
        bad = [(s, self._state[s].value) for s in sl
               if self._state[s] not in (SlotState.PREFILLED, SlotState.RUNNING)]
        if bad:
            raise ValueError(f"(slot, state) {bad}: decode_step needs prefilled, unfinished slots")
        return sl

    def _run_network(self, running: list[int]) -> None:
        """Feed each running slot's last token; its new logits replace the slot's logits."""
        if not running:
            return
        plan = self.cache.plan(running)
        n_text = torch.tensor([self._n_text[s] for s in running], dtype=torch.long, device=plan.pos.device)
        logits = self.model.step(self._last.index_select(0, plan.idx), plan.pos - n_text, self.cache, plan)
        self.cache.advance(plan)
        self._logits[plan.idx] = logits.float()

    def _generator(self, slot: int) -> torch.Generator:
        gen = self._gen[slot]
        if gen is None:
            raise RuntimeError(f"slot {slot} holds no request")
        return gen

    def _sample(self, sl: list[int], idx: Tensor) -> tuple[Tensor, Tensor]:
        """Sample one token per slot -> tokens [B] long, stopped-on-EOS [B] bool."""
        logits = self._logits.index_select(0, idx)  # [B, V]
        blocked = [len(self._tokens[s]) < EOS_BLOCKED_STEPS for s in sl]
        if any(blocked):
            rows = torch.tensor(blocked, device=idx.device)
            logits[:, self.eos].masked_fill_(rows, NEG_INF)  # upstream slices EOS off instead
        widths = [self.eos if b else self.eos + 1 for b in blocked]
        gens = [self._generator(s) for s in sl]
        tokens, penalised = sample_tokens(logits, self._seen.index_select(0, idx), self._rows.select(idx), gens, widths)
        return tokens, (tokens == self.eos) | (penalised.argmax(dim=-1) == self.eos)

    def _update(self, slot: int, token: int, eos: bool) -> bool:
        """Host bookkeeping of one sampled token; returns whether the slot is finished."""
        if eos:
            self._state[slot] = SlotState.FINISHED
            return True
        self._tokens[slot].append(token)
        done = len(self._tokens[slot]) >= self._budget[slot]
        self._state[slot] = SlotState.FINISHED if done else SlotState.RUNNING
        return done

    def _reset(self, slot: int) -> None:
        self.cache.reset(slot)
        self._logits[slot].zero_()
        self._seen[slot].zero_()
        self._last[slot] = 0
        self._gen[slot] = None
        self._state[slot] = SlotState.FREE
        self._n_text[slot] = self._budget[slot] = 0
        self._tokens[slot] = []


@dataclass(frozen=True)
class T2SRequest:
    """One request for ``decode_offline``: phones [P], bert [E, P], prompt [Y]."""

    phones: Tensor
    bert: Tensor
    prompt: Tensor
    sampling: SamplingParams = SamplingParams()
    seed: int | None = 0
    early_stop_num: int = -1
    generator: torch.Generator | None = None  # given: draw from it rather than one seeded from `seed`


@torch.inference_mode()
def decode_offline(model: T2SModel, requests: Sequence[T2SRequest], max_len: int | None = None) -> list[list[int]]:
    """Decode whole requests at once on private slots -> each one's generated tokens (no prompt,
    no EOS). The same prefill / decode_step code as serving."""
    need = max(r.phones.numel() + r.prompt.numel() for r in requests) + MAX_NEW_TOKENS
    slots = T2SSlots(model, len(requests), max_len=max_len or need)
    for s, r in enumerate(requests):
        slots.prefill(s, r.phones, r.bert, r.prompt, r.sampling, r.seed, r.early_stop_num, r.generator)
    live = list(range(len(requests)))
    while live:
        _, finished = slots.decode_step(live)
        live = [s for s, f in zip(live, finished.tolist()) if not f]
    return [slots.generated(s) for s in range(len(requests))]
