"""A fake of the S3 object API (path-style: PUT, GET, HEAD and DELETE of /bucket/key) on
127.0.0.1, enough for django-storages' S3 backend through boto3."""

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

NO_SUCH_KEY = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b"<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>"
)


class FakeS3:
    def __init__(self, bucket: str = "recordings") -> None:
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "FakeS3":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _key(self) -> str | None:
                path = unquote(urlsplit(self.path).path).lstrip("/")
                bucket, _, key = path.partition("/")
                return key if bucket == fake.bucket and key else None

            def _reply(self, status: int, body: bytes = b"", **headers: str) -> None:
                self.send_response(status)
                length = headers.pop("Content_Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.send_header("Content-Length", length)
                self.end_headers()
                if body and self.command != "HEAD":
                    self.wfile.write(body)

            def do_PUT(self) -> None:
                key = self._key()
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if key is None:
                    self._reply(400)
                    return
                fake.objects[key] = data
                self._reply(200, ETag=f'"{hashlib.md5(data).hexdigest()}"')  # noqa: S324

            def do_GET(self) -> None:
                key = self._key()
                if key not in fake.objects:
                    self._reply(404, NO_SUCH_KEY, Content_Type="application/xml")
                    return
                data = fake.objects[key]
                self._reply(200, data, Content_Type="application/octet-stream")

            def do_HEAD(self) -> None:
                key = self._key()
                if key not in fake.objects:
                    self._reply(404)
                    return
                self._reply(200, Content_Length=str(len(fake.objects[key])))

            def do_DELETE(self) -> None:
                key = self._key()
                if key is not None:
                    fake.objects.pop(key, None)
                self._reply(204)

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
