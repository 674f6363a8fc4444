"""Playback tracking from sparse marks, and reading fields off audio frames without parsing."""

import pytest

from workers.bridge import string_field
from workers.playback import MARK_BYTES, Playback


def test_marks_go_out_at_an_item_start_then_every_100_ms() -> None:
    playback = Playback()
    marks = [playback.sending("item_a", 160) for _ in range(11)]  # 11 frames of 20 ms
    assert [i for i, m in enumerate(marks) if m] == [0, 5, 10]
    assert playback.sending("item_b", 160) is not None  # a new item is marked at once
    assert MARK_BYTES == 800


def test_the_position_follows_the_last_echo_in_real_time_up_to_what_was_sent() -> None:
    playback = Playback()
    first = playback.sending("item_a", 160)
    for _ in range(9):
        playback.sending("item_a", 160)  # 200 ms sent in all
    assert playback.position_ms(now=5.0) == 0  # nothing confirmed heard yet
    assert playback.echoed(first, now=10.0)
    assert playback.position_ms(now=10.0) == 20
    assert playback.position_ms(now=10.05) == 70  # 50 ms later, still playing
    assert playback.position_ms(now=12.0) == 200  # never beyond what was sent
    assert not playback.echoed("no-such-mark", now=12.0)


def test_waiting_for_the_end_of_the_audio_and_clearing() -> None:
    playback = Playback()
    playback.sending("item_a", 160)
    playback.sending("item_a", 160)
    assert playback.unheard
    last = playback.mark_all()
    assert last is not None and playback.last_mark() == last
    assert playback.mark_all() is None  # already covered
    for name in list(playback.pending):
        playback.echoed(name, now=1.0)
    assert not playback.unheard
    playback.sending("item_b", 160)
    playback.clear()
    assert not playback.pending and playback.position_ms(now=2.0) == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"event":"media","media":{"payload":"AAEC"}}', "AAEC"),
        ('{"event": "media", "media": {"payload": "AAEC"}}', "AAEC"),
        ('{"event":"media","media":{"payload":12}}', None),
        ('{"event":"media","media":{}}', None),
        ('{"event":"media","media":{"payload":"AAEC', None),
    ],
)
def test_string_fields_are_read_whatever_the_spacing(text: str, expected: str | None) -> None:
    assert string_field(text, "payload") == expected
