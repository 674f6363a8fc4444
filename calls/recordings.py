"""Call recordings: G.711 μ-law tracks (as the carrier sent them) turned into a 16-bit PCM WAV,
caller on the left, agent on the right, and kept in Django's default storage.

While a call runs, the worker keeps both tracks and saves them raw when it ends (`save_raw`);
the post-call pipeline writes the WAV (`store`) and removes the raw tracks."""

import hashlib
import io
import wave
from typing import TYPE_CHECKING

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import FileResponse

from tenants.errors import NotFound

if TYPE_CHECKING:
    from calls.models import Call

SAMPLE_RATE = 8000  # G.711: 8000 one-byte samples a second
SILENCE = 0xFF
TRACKS = ("caller", "agent")


def _decode(value: int) -> int:
    value = ~value & 0xFF
    sign, exponent, mantissa = value & 0x80, (value >> 4) & 0x07, value & 0x0F
    sample = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return -sample if sign else sample


DECODE_TABLE = [_decode(b) for b in range(256)]
# bytes.translate decodes a whole track at C speed: one table for each byte of the sample.
_LOW = bytes(sample & 0xFF for sample in DECODE_TABLE)
_HIGH = bytes((sample >> 8) & 0xFF for sample in DECODE_TABLE)


def wav_from_ulaw(*tracks: bytes) -> bytes:
    """16-bit little-endian PCM WAV at 8 kHz with one channel per track (shorter tracks are
    padded with silence)."""
    length = max(len(track) for track in tracks)
    width = 2 * len(tracks)
    frames = bytearray(width * length)
    for channel, track in enumerate(tracks):
        padded = track + bytes([SILENCE]) * (length - len(track))
        frames[2 * channel :: width] = padded.translate(_LOW)
        frames[2 * channel + 1 :: width] = padded.translate(_HIGH)
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(len(tracks))
        writer.setsampwidth(2)
        writer.setframerate(SAMPLE_RATE)
        writer.writeframes(bytes(frames))
    return out.getvalue()


def raw_path(tenant_public_id: str, call_public_id: str, track: str) -> str:
    return f"recordings/{tenant_public_id}/raw/{call_public_id}.{track}.ulaw"


def wav_path(tenant_public_id: str, call_public_id: str) -> str:
    return f"recordings/{tenant_public_id}/{call_public_id}.wav"


def save_raw(tenant_public_id: str, call_public_id: str, caller: bytes, agent: bytes) -> None:
    for track, audio in zip(TRACKS, (caller, agent), strict=True):
        path = raw_path(tenant_public_id, call_public_id, track)
        default_storage.delete(path)
        default_storage.save(path, ContentFile(audio))


def load_raw(tenant_public_id: str, call_public_id: str) -> tuple[bytes, bytes] | None:
    paths = [raw_path(tenant_public_id, call_public_id, track) for track in TRACKS]
    if not all(default_storage.exists(path) for path in paths):
        return None
    tracks = []
    for path in paths:
        with default_storage.open(path, "rb") as handle:
            tracks.append(handle.read())
    return tracks[0], tracks[1]


def delete_raw(tenant_public_id: str, call_public_id: str) -> None:
    for track in TRACKS:
        default_storage.delete(raw_path(tenant_public_id, call_public_id, track))


def store(tenant_public_id: str, call_public_id: str, caller: bytes, agent: bytes) -> dict:
    """Write the WAV; returns the Call fields that describe it."""
    data = wav_from_ulaw(caller, agent)
    path = wav_path(tenant_public_id, call_public_id)
    default_storage.delete(path)  # a re-run replaces its own earlier file, never a suffixed copy
    name = default_storage.save(path, ContentFile(data))
    return {
        "recording": name,
        "recording_duration_ms": max(len(caller), len(agent)) * 1000 // SAMPLE_RATE,
        "recording_sha256": hashlib.sha256(data).hexdigest(),
    }


def download(call: "Call") -> FileResponse:
    """The call's WAV as a response (the API's and the console's), never cached by a browser or
    proxy; NotFound when the call has none."""
    if not call.recording:
        raise NotFound("This call has no recording.")
    response = FileResponse(
        call.recording.open("rb"), content_type="audio/wav", filename=f"{call.public_id}.wav"
    )
    response["Cache-Control"] = "private, no-store"
    return response
