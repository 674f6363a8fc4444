"""G.711 mu-law audio: the format that passes untouched between the carrier and the model.

Also the helpers the simulator and the call simulator share: WAV files, tones, speech from
espeak-ng when it is installed, and *caption frames*. A caption frame is a 20 ms mu-law frame
whose bytes spell a marker and a piece of text; it sounds like a short click and is loud enough
for voice detection. A simulated caller puts captions in front of what it "says" and the
Realtime simulator reads them as its transcription (and the other way round), so tests and
demos get real words through the real audio path without speech recognition.
"""

import io
import math
import shutil
import struct
import subprocess
import tempfile
import wave
from pathlib import Path

from calls.recordings import DECODE_TABLE, wav_from_ulaw

SAMPLE_RATE = 8000
FRAME_BYTES = 160  # 20 ms
SILENCE = b"\xff" * FRAME_BYTES
CAPTION_MAGIC = b"SBTX"
TIMESTAMP_MAGIC = b"SBTS"
_CAPTION_ROOM = FRAME_BYTES - len(CAPTION_MAGIC) - 2


LOUDNESS = [abs(s) for s in DECODE_TABLE]


def encode_sample(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent, mask = 7, 0x4000
    while exponent > 0 and not magnitude & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def decode(ulaw: bytes) -> list[int]:
    return [DECODE_TABLE[b] for b in ulaw]


def encode(samples: list[int]) -> bytes:
    return bytes(encode_sample(s) for s in samples)


def loudness(ulaw: bytes) -> float:
    """Mean absolute amplitude of a mu-law chunk (0 to about 32000)."""
    return sum(LOUDNESS[b] for b in ulaw) / max(1, len(ulaw))


def frames(ulaw: bytes) -> list[bytes]:
    """Split audio into 20 ms frames, padding the last with silence."""
    padded = ulaw + SILENCE[: (-len(ulaw)) % FRAME_BYTES]
    return [padded[i : i + FRAME_BYTES] for i in range(0, len(padded), FRAME_BYTES)]


# --- Captions ---------------------------------------------------------------------------------


def caption_frames(text: str) -> list[bytes]:
    """Frames carrying `text`; the last one has its flag set."""
    data = text.encode("utf-8")
    chunks = [data[i : i + _CAPTION_ROOM] for i in range(0, len(data), _CAPTION_ROOM)] or [b""]
    out = []
    for index, chunk in enumerate(chunks):
        last = 1 if index == len(chunks) - 1 else 0
        frame = CAPTION_MAGIC + bytes([last, len(chunk)]) + chunk
        out.append(frame + b"\x80" * (FRAME_BYTES - len(frame)))
    return out


class CaptionReader:
    """Collects caption frames from a stream of audio chunks into whole texts."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def feed(self, chunk: bytes) -> list[str]:
        texts = []
        start = chunk.find(CAPTION_MAGIC)
        while start != -1 and start + len(CAPTION_MAGIC) + 2 <= len(chunk):
            header = start + len(CAPTION_MAGIC)
            last, length = chunk[header], chunk[header + 1]
            self._parts.append(chunk[header + 2 : header + 2 + length])
            if last:
                texts.append(b"".join(self._parts).decode("utf-8", errors="replace"))
                self._parts = []
            start = chunk.find(CAPTION_MAGIC, header + 2 + length)
        return texts


def timestamp_frame(sequence: int, sent_ns: int, filler: bytes) -> bytes:
    """A frame stamped with a sequence number and send time, for latency measurements."""
    head = TIMESTAMP_MAGIC + struct.pack(">IQ", sequence, sent_ns)
    return head + filler[len(head) : FRAME_BYTES]


def read_timestamp(frame: bytes) -> tuple[int, int] | None:
    if not frame.startswith(TIMESTAMP_MAGIC) or len(frame) < 16:
        return None
    sequence, sent_ns = struct.unpack(">IQ", frame[4:16])
    return sequence, sent_ns


# --- Tones and speech -------------------------------------------------------------------------


def tone(milliseconds: int, frequency: float = 440.0, amplitude: int = 6000) -> bytes:
    count = SAMPLE_RATE * milliseconds // 1000
    return encode(
        [int(amplitude * math.sin(2 * math.pi * frequency * i / SAMPLE_RATE)) for i in range(count)]
    )


TONE_FRAME = tone(20)


def speech_like(text: str) -> bytes:
    """Tone bursts as long as `text` would take to say (about 60 ms a character)."""
    milliseconds = min(8000, max(400, 60 * len(text)))
    words = max(1, len(text.split()))
    burst = milliseconds // words
    pieces = []
    for index in range(words):
        pieces.append(tone(max(40, burst - 60), frequency=300 + (index % 5) * 40))
        pieces.append(SILENCE[: 8 * 60])
    return b"".join(pieces)


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def synthesize(text: str) -> bytes:
    """Speech for `text` as 8 kHz mu-law: espeak-ng when installed, tone bursts otherwise."""
    if not espeak_available():
        return speech_like(text)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "speech.wav"
        subprocess.run(  # noqa: S603 - fixed program, text passed as one argument
            ["espeak-ng", "-w", str(path), "--", text],  # noqa: S607
            check=True,
            capture_output=True,
            timeout=30,
        )
        return read_wav(path.read_bytes())


# --- WAV --------------------------------------------------------------------------------------


def _resample(samples: list[int], rate: int) -> list[int]:
    if rate == SAMPLE_RATE or not samples:
        return samples
    step = rate / SAMPLE_RATE
    count = int(len(samples) / step)
    out = []
    for i in range(count):
        position = i * step
        left = int(position)
        right = min(left + 1, len(samples) - 1)
        fraction = position - left
        out.append(int(samples[left] * (1 - fraction) + samples[right] * fraction))
    return out


def read_wav(data: bytes) -> bytes:
    """Any 8- or 16-bit PCM WAV (mono or stereo, any rate) as 8 kHz mu-law."""
    with wave.open(io.BytesIO(data)) as reader:
        channels, width, rate = reader.getnchannels(), reader.getsampwidth(), reader.getframerate()
        raw = reader.readframes(reader.getnframes())
    if width == 2:
        samples = list(struct.unpack(f"<{len(raw) // 2}h", raw))
    elif width == 1:
        samples = [(b - 128) << 8 for b in raw]
    else:
        raise ValueError("Only 8- and 16-bit PCM WAV files are supported.")
    mono = samples[::channels] if channels > 1 else samples
    return encode(_resample(mono, rate))


def write_wav(ulaw: bytes, *tracks: bytes) -> bytes:
    """16-bit PCM WAV at 8 kHz: mono from one track, stereo (left, right) from two."""
    return wav_from_ulaw(ulaw, *tracks)
