"""How a sentence's frames are cut into audio chunks: the engine's (and the cache replay's) framing.

A small first chunk (fast first audio), then each chunk twice the one before, up to `chunk_frames`:
each is due when the audio before it has played, which is twice as long as the chunk before it,
and the context frames each window needs either side cost less the longer the chunk (issue #18:
+122% on an 18-frame first chunk, +34% on 64 frames). Each chunk is vocoded from a window with
context frames on both sides, so that the joins equal a whole-sentence decode.

The same rule serves models whose length is known at prefill and models that stop on EOS: with an
unknown total, a chunk is cut only once enough frames exist past its end that the tail-folding
rule (a remainder under half a first chunk joins the chunk before it) cannot apply to it any more.
So a sentence gets the same chunks whether or not its length was known in advance.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import EngineSection

_DEFAULTS = EngineSection()  # engine.first_chunk_frames, engine.chunk_frames


@dataclass(frozen=True)
class ChunkConfig:
    first_chunk_frames: int = _DEFAULTS.first_chunk_frames  # small, for fast first audio
    chunk_frames: int = _DEFAULTS.chunk_frames  # the largest chunk: later ones double up to it
    left_context: int = 16  # frames of context either side so chunk joins are exact
    right_context: int = 16

    def chunk_size(self, index: int) -> int:
        if index == 0:
            return self.first_chunk_frames
        return min(self.first_chunk_frames << min(index, 16), max(self.chunk_frames, self.first_chunk_frames))

    @property
    def fold_frames(self) -> int:
        """A remainder shorter than this is folded into the chunk before it."""
        return self.first_chunk_frames // 2


@dataclass(frozen=True)
class ChunkSpan:
    """One chunk: it emits frames [start, end), decoded from [window_start, window_end)."""

    index: int
    start: int
    end: int
    window_start: int
    window_end: int
    last: bool

    @property
    def window_frames(self) -> int:
        return self.window_end - self.window_start


def next_chunk(cfg: ChunkConfig, index: int, start: int, ready: int, total: int | None) -> ChunkSpan | None:
    """Chunk `index`, starting at frame `start`, if it can be vocoded now: `ready` frames exist,
    `total` is the sentence's length (None while the model has not finished)."""
    if total is not None and start >= total:
        return None
    end = start + cfg.chunk_size(index)
    if total is not None:
        end = min(total, end)
        if total - end < cfg.fold_frames:
            end = total
        window_end = min(total, end + cfg.right_context)
        needed = window_end
    else:
        window_end = end + cfg.right_context
        # the fold rule must be decided: at least fold_frames (and one) frames beyond `end`
        needed = max(window_end, end + cfg.fold_frames, end + 1)
    if ready < needed:
        return None
    last = total is not None and end == total
    return ChunkSpan(index, start, end, max(0, start - cfg.left_context), window_end, last)


def chunk_bounds(num_frames: int, cfg: ChunkConfig) -> list[tuple[int, int]]:
    """[start, end) of every chunk of a sentence of known length (all frames ready)."""
    bounds: list[tuple[int, int]] = []
    start = 0
    while (span := next_chunk(cfg, len(bounds), start, num_frames, num_frames)) is not None:
        bounds.append((span.start, span.end))
        start = span.end
    return bounds
