"""Pure ASGI middleware (no per-request task or body buffering, unlike ``BaseHTTPMiddleware``).

``BodySizeLimit`` answers 413 from the declared ``Content-Length`` before reading any of the
body, and otherwise counts the bytes as they stream in and aborts once past the limit: an upload
is never held in memory beyond the limit. Its 413 and 400 close the connection: on a kept-alive
one, uvicorn would go on reading (and discarding) the rest of the body, all 5 GB of a 5 GB upload.

``RequestLog`` gives each request an id and writes one JSON log line and the Prometheus request
metrics for it. It is also where an unexpected exception ends: it answers a generic JSON 500
naming the request id and logs the traceback on the request's line. (A FastAPI handler for
``Exception`` would run in Starlette's outermost middleware, after this one has finished: the
500 would carry no ``X-Request-ID``, its line no ``error``, and uvicorn would log the traceback
again.)
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from eurosat_service.adapters.prometheus_metrics import ServiceMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("eurosat_service.access")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class _BodyTooLarge(Exception):
    pass


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value
    return None


async def _send_json(send: Send, status: int, body: dict[str, str], close: bool = False) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if close:  # uvicorn closes the connection after this answer instead of reading the unread body
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await _send_json(send, 400, {"error": "bad_request", "detail": "invalid Content-Length header"},
                                 close=True)
                return
            if length > self.max_bytes:
                await self._reject(scope, send, f"the request body is {length} bytes")
                return

        received = 0
        too_large = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if too_large:
                return  # whatever the app answers to an aborted body, the answer is 413
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large and not response_started:
            await self._reject(scope, send, f"the request body exceeded {self.max_bytes} bytes")

    async def _reject(self, scope: Scope, send: Send, what: str) -> None:
        scope.setdefault("state", {})["error"] = "upload_too_large"  # for the request's log line
        await _send_json(send, 413, {
            "error": "upload_too_large", "detail": f"{what}; the limit is {self.max_bytes} bytes",
        }, close=True)


class RequestLog:
    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, endpoints: frozenset[str],
                 mounts: tuple[str, ...] = ()) -> None:
        self.app = app
        self.metrics = metrics
        # Known paths, and mounted folders (a request under one is logged as the mount's path);
        # anything else is logged as "other", so the metrics' labels stay bounded.
        self.endpoints = endpoints
        self._mounts = tuple((mount.rstrip("/") + "/", mount) for mount in mounts)
        # Unique per process start + a counter: as unique as a uuid4 per request, at a fraction of the cost.
        self._id_prefix = secrets.token_hex(6)
        self._ids = itertools.count(1)

    def _mounted(self, path: str) -> str:
        return next((mount for prefix, mount in self._mounts if path.startswith(prefix)), "other")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = (_header(scope, b"x-request-id") or b"").decode("latin-1")
        request_id = given if given and _SAFE_REQUEST_ID.match(given) else f"{self._id_prefix}-{next(self._ids):x}"
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        response_started = False
        failure: BaseException | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # a bug: answered and logged here, not re-raised (see the docstring)
            failure = exc
            state["error"] = "internal_error"
            if not response_started:  # else the client gets a cut-off response: uvicorn closes it
                await _send_json(send_with_id, 500, {
                    "error": "internal_error", "detail": f"internal error (request id {request_id})",
                })
        finally:
            seconds = time.perf_counter() - started
            path = scope.get("path", "")
            endpoint = path if path in self.endpoints else self._mounted(path)
            method = scope.get("method", "")
            self.metrics.observe_request(endpoint, method, status, seconds)
            fields = {
                "request_id": request_id, "method": method, "endpoint": endpoint, "path": path,
                "status": status, "latency_ms": round(seconds * 1000, 2),
                "batch_size": state.get("batch_size"), "images": state.get("images"),
            }
            if "error" in state:
                fields["error"] = state["error"]
            if failure is None:
                access_log.info("request", extra={"fields": fields})
            else:
                access_log.error("request failed", exc_info=failure, extra={"fields": fields})
