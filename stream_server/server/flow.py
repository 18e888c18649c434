"""How far a session's client is behind, counted in one place (docs/limits.md).

A session's output moves one way: text waits in its context's segmenter until a sentence ends;
the sentence is accepted and waits for room ahead of the client; it is synthesized (its audio is
expected), its audio arrives (held for the client) and the pump sends it. FlowControl counts every
stage of that for one session, and every limit reads it here:

- the submit gate: a sentence reaches the source only while the audio ahead of the client (held +
  expected, audio_ahead.py) is under `session.max_audio_ahead_seconds`;
- the backlog: text accepted and not yet spoken and sent stays under `session.max_pending_chars`;
- stall handling: a send that makes no progress for `session.send_stall_timeout_seconds` ends the
  session's work (send_stall.py);
- admission (admission.py): whether the session is idle, when it last sent something, and how
  many sentences it has queued (`admission.max_queued_sentences`).

The adapters' own buffers are hops, not measures: an EventQueue (compat.py) is bounded so that the
pump's sends wait on it as on a socket, which is what the stall guard watches.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ..config import SessionSection
from .audio_ahead import AudioAhead, SubmitGate
from .contexts import Ticket
from .events import SessionError
from .send_stall import StallGuard


class FlowControl:
    def __init__(
        self,
        config: SessionSection,
        submit: Callable[[Ticket], None],
        buffered_chars: Callable[[], int],
        on_stall: Callable[[], None],
    ) -> None:
        self.ahead = AudioAhead(config.max_audio_ahead_seconds)
        self.gate: SubmitGate[Ticket] = SubmitGate(self.ahead, self._submit, lambda t: t.cancelled)
        self.guard = StallGuard(config.send_stall_timeout_seconds, on_stall)
        self._max_pending_chars = config.max_pending_chars
        self._to_source = submit
        self._buffered_chars = buffered_chars  # text in the contexts' segmenters
        self.sentence_chars = 0  # text of the sentences accepted and not yet through the pump
        self.sentences = 0  # sentences accepted and not yet through the pump (sent, failed or cancelled)
        self.markers = 0  # markers (flushed, done) queued and not yet sent: one character each
        self.last_output_at = time.monotonic()  # when the pump last finished an item

    # --- what the limits read -------------------------------------------------------------
    @property
    def stalled(self) -> asyncio.Event:
        return self.guard.stalled

    def pending_chars(self) -> int:
        """Text accepted and not yet spoken and sent: what the client has asked for and not yet
        received, which bounds the audio a session holds for a client that does not read."""
        return self.sentence_chars + self.markers + self._buffered_chars()

    def is_idle(self) -> bool:
        """Nothing queued or being sent (a stalled session sends nothing)."""
        return self.stalled.is_set() or (self.sentences == 0 and self.markers == 0)

    def check_room(self, more: int) -> None:
        """Refuse `more` characters that would take the backlog past its limit."""
        pending = self.pending_chars()
        if pending + more > self._max_pending_chars:
            raise SessionError(
                "too_much_pending",
                f"{pending} characters are still to be spoken and sent, and {more} more would exceed "
                f"the limit of {self._max_pending_chars} (session.max_pending_chars); read the audio "
                "sent so far, or cancel, then send more",
            )

    # --- what the session and its pump report ---------------------------------------------
    def accept(self, ticket: Ticket) -> None:
        """A sentence for the client: to the source now, or once the client has caught up."""
        self.sentences += 1
        self.sentence_chars += len(ticket.text)
        self.gate.offer(ticket)

    def release(self, ticket: Ticket) -> None:
        """The sentence is through (sent, failed or cancelled): it counts no more."""
        if not ticket.released:
            ticket.released = True
            self.sentences -= 1
            self.sentence_chars -= len(ticket.text)
        self.ahead.drop(ticket.share)

    def marker_queued(self) -> None:
        self.markers += 1

    def marker_sent(self) -> None:
        self.markers -= 1

    def arrived(self, ticket: Ticket, seconds: float, last: bool) -> None:
        """Audio of the sentence came from its source (on the loop)."""
        self.ahead.arrived(ticket.share, seconds, last)
        if last:  # maybe room now; not from inside the source's own call (a cache fan-out)
            asyncio.get_running_loop().call_soon(self.gate.feed)

    def sent(self, ticket: Ticket, seconds: float) -> None:
        """Audio of the sentence went to the client."""
        self.ahead.sent(ticket.share, seconds)
        self.gate.feed()

    def item_done(self) -> None:
        """The pump finished an item (a sentence or a marker)."""
        self.gate.feed()
        self.last_output_at = time.monotonic()

    def room_freed(self) -> None:
        """Sentences were cancelled: their audio no longer counts ahead."""
        self.gate.feed()

    def stop(self) -> None:
        """Nothing more reaches the source (the session is ending, or its client stalled)."""
        self.gate.close()

    def markers_dropped(self) -> None:
        """The queued markers will never be sent (the client stalled)."""
        self.markers = 0

    def _submit(self, ticket: Ticket) -> None:
        request = ticket.request
        ticket.share = self.ahead.open(len(request.spoken), request.options.length_scale)
        self._to_source(ticket)
