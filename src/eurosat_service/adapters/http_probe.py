"""Plain HTTP calls with the standard library, for `smoke` and `status`: never raises, a failed
call is an ``HttpReply`` with status 0 and the reason (an unusable URL included)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

from eurosat_service.domain.ports import HttpReply

MAX_BODY = 1 << 20


class UrllibEndpointProbe:
    def get(self, url: str, timeout: float) -> HttpReply:
        return self._send(url, lambda: urllib.request.Request(url, method="GET"), timeout)

    def post_file(self, url: str, field: str, filename: str, content: bytes, content_type: str,
                  timeout: float) -> HttpReply:
        boundary = uuid.uuid4().hex
        body = b"".join([
            f"--{boundary}\r\n".encode(),
            f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'.encode(),
            f"Content-Type: {content_type}\r\n\r\n".encode(),
            content,
            f"\r\n--{boundary}--\r\n".encode(),
        ])
        return self._send(url, lambda: urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}),
            timeout)

    @staticmethod
    def _send(url: str, request: Callable[[], urllib.request.Request], timeout: float) -> HttpReply:
        """``request`` is built here, inside the guard: urllib raises ValueError for a malformed URL
        (``notaurl``, ``http://[::1``) in the constructor. Only http(s) is probed: urllib would also
        read a ``file:`` URL, which has no HTTP status."""
        try:
            if urlsplit(url).scheme not in ("http", "https"):
                return HttpReply(0, b"", 0.0, f"not an http:// or https:// URL: {url!r}")
            prepared = request()
        except ValueError as exc:
            return HttpReply(0, b"", 0.0, f"not a usable URL {url!r}: {exc}")
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(prepared, timeout=timeout) as response:
                return HttpReply(response.status, response.read(MAX_BODY), time.perf_counter() - start)
        except urllib.error.HTTPError as exc:
            return HttpReply(exc.code, exc.read(MAX_BODY), time.perf_counter() - start)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            return HttpReply(0, b"", time.perf_counter() - start, str(reason))
