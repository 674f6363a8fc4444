"""Both sides of a call as the caller heard them, kept in memory while the call runs (only when
the version records). The caller's track is every frame the carrier sent; the agent's track
starts each response where the caller's track stands when it begins, and loses what a barge-in
kept the caller from hearing."""

import base64
from dataclasses import dataclass, field

SILENCE = b"\xff"
BYTES_PER_MS = 8


@dataclass
class Recorder:
    caller: bytearray = field(default_factory=bytearray)
    agent: bytearray = field(default_factory=bytearray)
    item: str = ""
    item_start: int = 0  # where the current response item's audio begins in the agent track

    def heard(self, payload: str) -> None:
        self.caller += base64.b64decode(payload)

    def said(self, item: str, payload: str) -> None:
        if len(self.agent) < len(self.caller):  # the agent was quiet until now
            self.agent += SILENCE * (len(self.caller) - len(self.agent))
        if item != self.item:
            self.item, self.item_start = item, len(self.agent)
        self.agent += base64.b64decode(payload)

    def cut(self, item: str, played_ms: int) -> None:
        """The caller interrupted `item` after hearing `played_ms` of it."""
        if item == self.item:
            del self.agent[self.item_start + played_ms * BYTES_PER_MS :]
            self.item = ""
