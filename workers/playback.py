"""What the caller has heard of the agent's audio, from the carrier's mark echoes.

Marks go out sparsely: one after the first chunk of each response item (so its playback start
is known), then one per MARK_BYTES of audio, and one on demand when something must wait for the
audio to finish. Between echoes the carrier plays in real time, so the position is interpolated
from the last echo, capped by what was sent. Fewer marks mean fewer frames both ways on every
call, at no cost in precision.
"""

from dataclasses import dataclass, field

BYTES_PER_SECOND = 8000  # G.711 μ-law, 8 kHz, one byte a sample
MARK_BYTES = BYTES_PER_SECOND // 10  # a mark per 100 ms of audio


@dataclass
class Playback:
    item: str = ""  # the response item whose audio is going out
    sent: int = 0  # bytes of `item` sent to the carrier
    marked: int = 0  # bytes of `item` covered by marks sent
    pending: dict[str, tuple[str, int]] = field(default_factory=dict)  # mark -> (item, bytes)
    heard_item: str = ""
    heard: int = 0  # bytes of `heard_item` the last echo confirmed
    heard_at: float = 0.0  # when (monotonic seconds)
    counter: int = 0

    def sending(self, item: str, size: int) -> str | None:
        """`size` bytes of `item` go to the carrier; returns a mark to send after them, if due."""
        first = item != self.item
        if first:
            self.item, self.sent, self.marked = item, 0, 0
        self.sent += size
        if first or self.sent - self.marked >= MARK_BYTES:
            return self._mark()
        return None

    def mark_all(self) -> str | None:
        """A mark after everything sent, unless the last one already is."""
        return self._mark() if self.item and self.sent > self.marked else None

    def _mark(self) -> str:
        self.counter += 1
        name = str(self.counter)
        self.pending[name] = (self.item, self.sent)
        self.marked = self.sent
        return name

    def issued(self, name: str) -> bool:
        """Whether `name` is a mark this playback sent (pending, heard or cleared)."""
        # Names are the counter's values: 1, 2, … (checked as text first: any string arrives).
        return (
            0 < len(name) <= 12
            and name.isascii()
            and name.isdigit()
            and name[0] != "0"
            and int(name) <= self.counter
        )

    def echoed(self, name: str, now: float) -> bool:
        """The carrier has played everything up to mark `name`."""
        entry = self.pending.pop(name, None)
        if entry is None:
            return False
        self.heard_item, self.heard = entry
        self.heard_at = now
        return True

    @property
    def unheard(self) -> bool:
        """Audio the carrier may still be playing."""
        return bool(self.pending) or (bool(self.item) and self.sent > self.heard_of(self.item))

    def heard_of(self, item: str) -> int:
        return self.heard if item == self.heard_item else 0

    def position_ms(self, now: float) -> int:
        """How much of the current item the caller has heard by `now`."""
        if not self.item or self.heard_item != self.item:
            return 0
        since = max(0.0, now - self.heard_at) * BYTES_PER_SECOND
        return int((self.heard + min(self.sent - self.heard, since)) * 1000 // BYTES_PER_SECOND)

    def last_mark(self) -> str:
        return next(reversed(self.pending), "")

    def clear(self) -> None:
        """The carrier dropped its queue (or the model changed): nothing pending is heard."""
        self.pending.clear()
        self.item, self.sent, self.marked = "", 0, 0
