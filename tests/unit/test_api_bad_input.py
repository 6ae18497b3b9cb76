"""Bad uploads get a 4xx JSON error saying what was wrong, never a 500 or a traceback, and the
next good request is answered normally (fake classifier; real decoding is in tests/integration)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from eurosat_service.domain.errors import EurosatError, Overloaded
from eurosat_service.entrypoints.json_logging import JsonFormatter
from eurosat_service.entrypoints.web.middleware import BodySizeLimit
from tests.unit.api_support import CARD, api_client, image
from tests.unit.fakes import FakeClassifier


@pytest.mark.parametrize("data, status, error", [
    (b"NOTANIMAGE plain text", 415, "unsupported_image_format"),
    (b"CORRUPT jpeg", 422, "invalid_image"),
    (b"BOMB png", 413, "image_too_large"),
])
def test_bad_images_get_a_json_error_and_the_next_request_works(data: bytes, status: int, error: str) -> None:
    with api_client() as client:
        response = client.post("/predict", files=[image("file", data)])
        assert response.status_code == status
        body = response.json()
        assert body["error"] == error and body["detail"]
        assert "Traceback" not in response.text
        batch = client.post("/predict/batch", files=[image("files", b"river-tile"), image("files", data)])
        assert batch.status_code == status
        assert batch.json()["detail"].startswith("image 2 of 2: ")
        assert client.post("/predict", files=[image("file", b"river-tile")]).json()["label"] == "River"


@pytest.mark.parametrize("request_kwargs", [
    {},  # no body at all
    {"files": [image("picture", b"river-tile")]},  # wrong field name
    {"data": {"file": "not a file"}},  # a text field, not an upload
    {"content": b"raw bytes", "headers": {"content-type": "image/jpeg"}},  # not multipart
])
def test_a_missing_file_field_is_a_422_naming_the_field(request_kwargs: dict) -> None:
    with api_client() as client:
        response = client.post("/predict", **request_kwargs)
        assert response.status_code == 422
        assert response.json()["error"] == "invalid_request"
        assert "file" in response.json()["detail"]
        batch = client.post("/predict/batch", **request_kwargs)
        assert batch.status_code == 422 and "files" in batch.json()["detail"]


def test_a_multipart_body_cut_short_is_not_told_to_send_multipart() -> None:
    """The part's closing boundary never came, so FastAPI found no ``file`` field: the hint says
    what was missing, not to send multipart/form-data, which the client did."""
    cut = (b"--B0UNDARY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t.jpg\"\r\n"
           b"Content-Type: image/jpeg\r\n\r\nriver-tile")
    with api_client() as client:
        response = client.post("/predict", content=cut,
                               headers={"content-type": "multipart/form-data; boundary=B0UNDARY"})
        assert response.status_code == 422
        assert response.json() == {"error": "invalid_request", "detail":
                                   "file: Field required (the multipart body holds no complete part of that name)"}
        raw = client.post("/predict", content=b"river-tile", headers={"content-type": "image/jpeg"})
        assert raw.json()["detail"] == "file: Field required (send the image as multipart/form-data)"


class BodyReader:
    """An ASGI app that reads the whole body, as a form parser does, behind ``BodySizeLimit``;
    the request body arrives in ``chunks`` and ``receives`` counts how many were asked for."""

    def __init__(self, chunks: list[bytes], max_bytes: int) -> None:
        self.chunks = chunks
        self.receives = 0
        self.app_called = False
        self.sent: list[dict] = []
        self.middleware = BodySizeLimit(self._app, max_bytes=max_bytes)

    async def _app(self, scope, receive, send) -> None:
        self.app_called = True
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read it all"})

    async def _receive(self) -> dict:
        self.receives += 1
        chunk = self.chunks[self.receives - 1]
        return {"type": "http.request", "body": chunk, "more_body": self.receives < len(self.chunks)}

    async def _send(self, message: dict) -> None:
        self.sent.append(message)

    def post(self, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict[bytes, bytes], dict]:
        scope = {"type": "http", "method": "POST", "path": "/predict", "headers": headers}
        asyncio.run(self.middleware(scope, self._receive, self._send))
        start, body = self.sent
        return start["status"], dict(start["headers"]), json.loads(body["body"])


def test_an_upload_above_the_limit_is_refused_from_its_content_length_without_reading_it() -> None:
    reader = BodyReader([b"x" * 500] * 4, max_bytes=1000)
    status, headers, body = reader.post([(b"content-length", b"2000")])
    assert status == 413 and body["error"] == "upload_too_large"
    assert body["detail"] == "the request body is 2000 bytes; the limit is 1000 bytes"
    assert reader.receives == 0 and not reader.app_called
    assert headers[b"connection"] == b"close"  # or uvicorn would read (and discard) the whole body

    with api_client(max_upload_bytes=1000) as client:  # the same through the app
        response = client.post("/predict", files=[image("file", b"river-tile" * 200)])
        assert response.status_code == 413
        assert response.json()["error"] == "upload_too_large"
        assert response.json()["detail"].startswith("the request body is ")  # not "exceeded": undeclared
        assert "limit is 1000 bytes" in response.json()["detail"]
        assert response.headers["connection"] == "close"
        assert client.post("/predict", files=[image("file", b"river-tile")]).status_code == 200


def test_a_streamed_upload_without_content_length_is_cut_off_at_the_limit() -> None:
    reader = BodyReader([b"x" * 500] * 100, max_bytes=2000)
    status, headers, body = reader.post([(b"content-type", b"multipart/form-data; boundary=B")])
    assert status == 413 and body["error"] == "upload_too_large"
    assert body["detail"] == "the request body exceeded 2000 bytes; the limit is 2000 bytes"
    assert reader.receives == 5  # 4 x 500 bytes is the limit: the 5th chunk passes it, no more is read
    assert headers[b"connection"] == b"close"

    # Through the app (the test client hands the app the whole body at once, so it cannot show
    # the cut-off itself, only the answer).
    def chunks():
        yield (b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
               b"Content-Type: image/jpeg\r\n\r\n")
        yield from [b"x" * 500] * 100
        yield b"\r\n--B--\r\n"

    with api_client(max_upload_bytes=2000) as client:
        response = client.post("/predict", content=chunks(),
                               headers={"content-type": "multipart/form-data; boundary=B"})
        assert response.status_code == 413
        assert response.json()["error"] == "upload_too_large"
        assert "exceeded 2000 bytes" in response.json()["detail"]
        assert client.post("/predict", files=[image("file", b"river-tile")]).status_code == 200


def test_an_invalid_content_length_is_a_400_that_closes_the_connection() -> None:
    reader = BodyReader([b"x"], max_bytes=1000)
    status, headers, body = reader.post([(b"content-length", b"lots")])
    assert status == 400 and body["error"] == "bad_request"
    assert reader.receives == 0 and headers[b"connection"] == b"close"
    with api_client() as client:
        response = client.post("/predict", content=b"x", headers={"content-length": "lots"})
    assert response.status_code == 400


def test_a_full_queue_answers_503_with_retry_after() -> None:
    class FullQueue:
        ready = True
        queue_depth = 64

        async def classify(self, images):
            raise Overloaded("the inference queue is full (64 images waiting); retry shortly")

    with api_client() as client:
        client.app.state.container.inference.override(FullQueue())
        response = client.post("/predict", files=[image("file", b"river-tile")])
        client.app.state.container.inference.reset_override()
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"] == "overloaded"
        assert client.post("/predict", files=[image("file", b"river-tile")]).status_code == 200


class FailsWhenArmed(FakeClassifier):
    armed = False

    def predict_decoded(self, pixels):
        if self.armed:
            self.armed = False
            raise RuntimeError("secret internal detail")
        return super().predict_decoded(pixels)


def test_an_unexpected_failure_is_a_generic_500_without_traceback_and_the_service_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FailsWhenArmed(CARD, answers={b"river-tile": "River"})
    with caplog.at_level(logging.INFO), api_client(fake) as client:
        fake.armed = True  # after the warm-up
        response = client.post("/predict", files=[image("file", b"river-tile")], headers={"x-request-id": "req-42"})
        assert response.status_code == 500
        assert response.json() == {"error": "internal_error", "detail": "internal error (request id req-42)"}
        assert response.headers["x-request-id"] == "req-42"
        assert "secret" not in response.text and "Traceback" not in response.text
        assert client.post("/predict", files=[image("file", b"river-tile")]).json()["label"] == "River"
    # One line for the failed request, the access line, with the error and the traceback; no
    # other line carries the traceback (uvicorn logs one for an exception that escapes the app).
    failed = [r for r in caplog.records if getattr(r, "fields", {}).get("request_id") == "req-42"]
    assert len(failed) == 1 and failed[0].name == "eurosat_service.access" and failed[0].levelname == "ERROR"
    assert failed[0].fields["status"] == 500 and failed[0].fields["error"] == "internal_error"
    assert "secret internal detail" in JsonFormatter().format(failed[0])
    assert [r for r in caplog.records if r.exc_info] == failed


def test_unknown_paths_and_methods_get_json_errors() -> None:
    with api_client() as client:
        assert client.get("/nope").json() == {"error": "not_found", "detail": "Not Found"}
        wrong = client.get("/predict")
        assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize("port, problem", [
    ("70000", "less than or equal to 65535"), ("-1", "greater than or equal to 0"),
])
def test_a_port_flag_out_of_range_is_refused_before_anything_is_built(
    port: str, problem: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from eurosat_service.entrypoints import api, container, json_logging

    monkeypatch.setattr(json_logging, "setup_json_logging", lambda: None)  # leave pytest's handlers be
    monkeypatch.setattr(container, "Container", lambda: pytest.fail("the container was built despite the flag"))
    with pytest.raises(EurosatError) as refused:  # cli.run prints it as one "error: ..." line, exit 2
        api.main(["--port", port])
    assert str(refused.value) == f"invalid setting: --port: Input should be {problem}"
