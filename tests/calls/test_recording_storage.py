"""Recordings in an S3-compatible bucket when one is configured (a fake S3 on 127.0.0.1)."""

import io
import json
import os
import subprocess
import sys
import wave

from django.conf import settings

from tests.fakes.s3 import FakeS3

SCRIPT = """
import json
import django
django.setup()
from calls import recordings
recordings.save_raw("ten_1", "call_1", b"\\x00" * 1600, b"\\xff" * 800)
caller, agent = recordings.load_raw("ten_1", "call_1")
fields = recordings.store("ten_1", "call_1", caller, agent)
recordings.delete_raw("ten_1", "call_1")
print(json.dumps({**fields, "gone": recordings.load_raw("ten_1", "call_1") is None}))
"""


def test_recordings_go_to_the_bucket_when_one_is_configured() -> None:
    s3 = FakeS3(bucket="calls-audio").start()
    try:
        env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "1",
            "AWS_STORAGE_BUCKET_NAME": "calls-audio",
            "AWS_S3_ENDPOINT_URL": s3.url,
            "AWS_S3_REGION_NAME": "us-east-1",
            "AWS_S3_ADDRESSING_STYLE": "path",
            "AWS_S3_PREFIX": "switchboard",
            "AWS_ACCESS_KEY_ID": "test-key",
            "AWS_SECRET_ACCESS_KEY": "test-secret",
        }
        result = subprocess.run(  # noqa: S603
            [sys.executable, "-c", SCRIPT],
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        fields = json.loads(result.stdout.strip().splitlines()[-1])
        assert fields["recording"] == "recordings/ten_1/call_1.wav"
        assert fields["recording_duration_ms"] == 200 and fields["gone"]
        assert list(s3.objects) == ["switchboard/recordings/ten_1/call_1.wav"]
        with wave.open(io.BytesIO(s3.objects["switchboard/recordings/ten_1/call_1.wav"])) as wav:
            assert (wav.getnchannels(), wav.getnframes()) == (2, 1600)
    finally:
        s3.stop()
