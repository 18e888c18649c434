"""Incremental sentence segmentation for streaming TTS.

Text arrives in arbitrary pieces (LLM tokens).  A sentence is emitted as soon
as its end is certain, so synthesis can start early.  The result never depends
on how the text was chunked: every decision reads only text that has already
arrived, and when a decision needs more text the scan waits instead of guessing
(``flush`` then treats the missing text as end of input).

The scan keeps its position between pushes, so each character is examined a
bounded number of times; the buffer itself is bounded by ``hard_chars`` (plus
any whitespace run still awaiting the word that follows it).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import SessionSection

_ASCII_ENDS = frozenset(".!?…")  # certain only once whitespace + next word arrive
_CJK_ENDS = frozenset("。！？")  # certain at once
_NEWLINES = frozenset("\n\r\u2028\u2029")
_OPEN = frozenset("「『（(“‘《〈【[{«")
_CLOSE = frozenset("」』）)”’》〉】]}»")
_CLOSERS = _CLOSE | {'"', "'"}  # may trail a terminator and stay with it
_OPENERS = _OPEN | {'"', "'"}  # may precede the first letter of the next sentence
_CLAUSE_CJK = frozenset("，；：、")  # CJK uses no space after clause marks
_CLAUSE = frozenset(",;:—–")  # only a break when followed by whitespace
# A "." after these never ends a sentence (titles, company suffixes, "vs.").
_ABBREVIATIONS = frozenset(
    "Dr Mr Mrs Ms Mx Prof Sr Jr St Mt Inc Ltd Co Corp vs Vs "
    "Gen Rev Capt Lt Col Sgt Hon Messrs".split()
)
# These only when a number follows ("No. 5", "Jan. 3"); "No. Go away." ends.
_BEFORE_DIGIT = frozenset(
    "No Nos Fig Vol Ch pp Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec".split()
)


_SESSION = SessionSection()  # session.soft_sentence_chars, session.hard_sentence_chars


@dataclass(frozen=True)
class SegmenterLimits:
    # past this, cut at the last comma/semicolon/colon (or dash) if there is one
    soft_chars: int = _SESSION.soft_sentence_chars
    # past this, hard-cut at the last whitespace (or at hard_chars if none)
    hard_chars: int = _SESSION.hard_sentence_chars

    def __post_init__(self) -> None:
        if not 1 <= self.soft_chars <= self.hard_chars:
            raise ValueError("need 1 <= soft_chars <= hard_chars")


class _Wait(Exception):
    """A decision needs text that has not arrived yet."""


def _char(look: str, i: int, final: bool) -> str:
    """look[i], '' past the end of input, or _Wait if it may still come."""
    if i < len(look):
        return look[i]
    if final:
        return ""
    raise _Wait


def _is_ellipsis(run: str) -> bool:
    return set(run) <= {".", "…"} and (len(run) > 1 or run == "…")


def _is_abbreviation(word: str, nxt: str, starts_sentence: bool) -> bool:
    """Whether ``word.`` (followed by ``nxt``) is an abbreviation, not an end."""
    if word in _ABBREVIATIONS:
        return True
    if word in _BEFORE_DIGIT and nxt.isdigit():
        return True
    if len(word) == 1 and word.isupper() and word != "I":  # initials: "J. R. R."
        return True
    parts = word.split(".")  # dotted initialisms: U.S., e.g., a.m., Ph.D.
    if len(parts) > 1 and all(p.isalpha() and len(p) <= 2 for p in parts):
        return True
    return starts_sentence and word.isdigit()  # list marker: "1. Buy milk."


def _is_clause_break(buf: str, i: int) -> bool:
    """A soft cut may go right after buf[i] (buf[i + 1] exists)."""
    ch = buf[i]
    if ch in _CLAUSE_CJK:
        return True
    if not buf[i + 1].isspace():  # "3:45", "1,000", "http://" are not clauses
        return False
    return ch in _CLAUSE or (ch == "-" and i > 0 and buf[i - 1].isspace())


class SentenceSegmenter:
    """Feed text pieces with :meth:`push`; get sentences once they are certain."""

    def __init__(self, limits: SegmenterLimits = SegmenterLimits()) -> None:
        self.limits = limits
        self._buf = ""  # pending text; never starts with whitespace
        self._restart()

    @property
    def pending(self) -> str:
        """The buffered, not yet emitted text."""
        return self._buf

    def push(self, text: str) -> list[str]:
        """Feed a piece; return the sentences that are now certainly complete."""
        # Leading whitespace of a sentence never matters, so it is never kept.
        self._buf = self._buf + text if self._buf else text.lstrip()
        return self._drain(final=False)

    def flush(self) -> list[str]:
        """End of input: emit everything that remains and reset."""
        out = self._drain(final=True)
        tail = self._buf.strip()
        self._buf = ""
        self._restart()
        return out + [tail] if tail else out

    # -- scanning state -------------------------------------------------------

    def _restart(self) -> None:
        """Reset the scan to the start of the (new) pending sentence."""
        self._pos = 0  # next index of _buf to examine
        self._has_word = False  # punctuation alone never forms a sentence
        self._depth = 0  # open brackets / CJK quotes
        self._dquote = False  # inside an ASCII "..." quote
        self._awaiting = False  # CJK end inside quotes: absorbing closers
        self._limits_at = -1  # position whose limit check is already done
        self._peek = (-1, 0)  # (position, index) where a lookahead stopped

    def _drain(self, final: bool) -> list[str]:
        out: list[str] = []
        while (cut := self._scan(final)) is not None:
            piece = self._buf[:cut].strip()
            self._buf = self._buf[cut:].lstrip()
            self._restart()
            if piece:
                out.append(piece)
        return out

    def _scan(self, final: bool) -> int | None:
        """Advance the scan; return the end index of a sentence, or None."""
        limits = self.limits
        while self._pos < len(self._buf):
            p = self._pos
            if p != self._limits_at and p in (limits.soft_chars, limits.hard_chars):
                self._limits_at = p  # the pending text now exceeds a limit
                cut = self._limit_cut(p)
                if cut is not None:
                    return cut
            try:
                end = self._step(p, final)
            except _Wait:
                return None
            if end is not None:
                return end
            self._pos = p + 1
        return None

    def _track(self, ch: str) -> None:
        """Follow quote/bracket nesting (only CJK ends look at it)."""
        if ch == '"':
            self._dquote = not self._dquote
        elif ch in _OPEN:
            self._depth += 1
        elif ch in _CLOSE and self._depth:
            self._depth -= 1

    def _quoted(self) -> bool:
        return self._depth > 0 or self._dquote

    def _step(self, p: int, final: bool) -> int | None:
        """Examine _buf[p]; return a sentence end index or None to go on."""
        buf = self._buf
        ch = buf[p]
        if self._awaiting:  # after 。 inside quotes: keep the closing quotes
            if ch in _CLOSERS:
                self._track(ch)
                return p + 1 if not self._quoted() else None
            return None if ch in _CJK_ENDS else p
        if ch in _NEWLINES:
            return p
        if ch.isspace():
            # p > 0 always: the buffer never starts with whitespace.
            return None if buf[p - 1].isspace() else self._ascii_end(p, final)
        self._track(ch)
        if ch in _CJK_ENDS and self._has_word:
            if not self._quoted():
                return p + 1
            self._awaiting = True
        if ch.isalnum():
            self._has_word = True
        return None

    # -- sentence ends ----------------------------------------------------------

    def _ascii_end(self, p: int, final: bool) -> int | None:
        """Whitespace at p: does a ./!/?/… (plus closers) before it end a sentence?"""
        buf = self._buf
        q = p - 1
        while q > 0 and buf[q] in _CLOSERS:
            q -= 1
        if buf[q] not in _ASCII_ENDS or not self._has_word:
            return None
        closed = q < p - 1
        r = q
        while r > 0 and buf[r - 1] in _ASCII_ENDS:
            r -= 1
        look = self._lookahead(p, final)
        if look is None:  # a newline follows: the sentence ends either way
            return p
        return p if self._ends(buf[r : q + 1], closed, r, look, final) else None

    def _lookahead(self, p: int, final: bool) -> str | None:
        """Up to 3 chars after the whitespace at p; None if a newline comes first."""
        buf = self._buf
        k = self._peek[1] if self._peek[0] == p else p  # resume a long whitespace run
        while k < len(buf) and buf[k].isspace():
            if buf[k] in _NEWLINES:
                return None
            k += 1
        if k == len(buf) and not final:
            # Whitespace past p + hard_chars can never be emitted (every cut lies
            # within hard_chars of the sentence start and pieces are stripped), so
            # drop it: keeps the buffer bounded even under a flood of spaces.
            k = min(k, p + self.limits.hard_chars + 1)
            self._buf = buf[:k]
            self._peek = (p, k)
            raise _Wait
        self._peek = (p, k)
        return buf[k : k + 3]

    def _ends(self, run: str, closed: bool, r: int, look: str, final: bool) -> bool:
        """Decide a terminator run ending at r + len(run) given the next text."""
        i = 1 if _char(look, 0, final) in _OPENERS else 0
        nxt = _char(look, i, final)
        if nxt.islower():  # "etc. and", "Well... maybe", '"Stop!" he said'
            return False
        if _is_ellipsis(run):
            # "Well... I guess so." - the pronoun I does not start a sentence.
            return not (nxt == "I" and not _char(look, i + 1, final).isalpha())
        if run != "." or closed:
            return True
        start = r
        while start > 0 and not self._buf[start - 1].isspace():
            start -= 1
        token = self._buf[start:r]
        word = token.lstrip("".join(_OPENERS))
        return not _is_abbreviation(word, nxt, start == 0 and word == token)

    # -- length limits ------------------------------------------------------------

    def _limit_cut(self, p: int) -> int | None:
        """The pending text is longer than a limit and no sentence ended before it."""
        if self._awaiting:  # a CJK sentence already ended; stop absorbing
            return p
        if p == self.limits.soft_chars:
            cut = self._soft_cut()
            if cut is not None:
                return cut
        if p == self.limits.hard_chars:
            return self._hard_cut()
        return None

    def _soft_cut(self) -> int | None:
        """After the last clause mark within soft_chars, but not in the first 20%."""
        soft = self.limits.soft_chars
        shortest = max(1, soft // 5)  # avoid tiny pieces
        for i in range(soft - 1, shortest - 2, -1):
            if _is_clause_break(self._buf, i):
                return i + 1
        return None

    def _hard_cut(self) -> int:
        """At the last whitespace within hard_chars, else exactly at hard_chars."""
        hard = self.limits.hard_chars
        for i in range(hard, 0, -1):
            if self._buf[i].isspace():
                return i
        return hard


def split_sentences(text: str, limits: SegmenterLimits = SegmenterLimits()) -> list[str]:
    """Segment a complete text (push + flush)."""
    segmenter = SentenceSegmenter(limits)
    return segmenter.push(text) + segmenter.flush()
