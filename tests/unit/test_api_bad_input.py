"""Bad uploads get a 4xx JSON error saying what was wrong, never a 500 or a traceback, and the
next good request is answered normally (fake classifier; real decoding is in tests/integration)."""

from __future__ import annotations

import pytest

from eurosat_service.domain.errors import Overloaded
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


def test_an_upload_above_the_limit_is_refused_from_its_content_length_without_reading_it() -> None:
    with api_client(max_upload_bytes=1000) as client:
        response = client.post("/predict", files=[image("file", b"river-tile" * 200)])
        assert response.status_code == 413
        assert response.json()["error"] == "upload_too_large"
        assert "limit is 1000 bytes" in response.json()["detail"]
        assert client.post("/predict", files=[image("file", b"river-tile")]).status_code == 200


def test_a_streamed_upload_without_content_length_is_cut_off_at_the_limit() -> None:
    chunks_sent = []

    def body():
        head = (b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
                b"Content-Type: image/jpeg\r\n\r\n")
        yield head
        for _ in range(100):
            chunks_sent.append(1)
            yield b"x" * 500
        yield b"\r\n--B--\r\n"

    with api_client(max_upload_bytes=2000) as client:
        response = client.post("/predict", content=body(),
                               headers={"content-type": "multipart/form-data; boundary=B"})
        assert response.status_code == 413
        assert response.json()["error"] == "upload_too_large"
        assert "exceeded 2000 bytes" in response.json()["detail"]
        assert client.post("/predict", files=[image("file", b"river-tile")]).status_code == 200


def test_an_invalid_content_length_is_a_400() -> None:
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


def test_an_unexpected_failure_is_a_generic_500_without_traceback_and_the_service_recovers() -> None:
    fake = FailsWhenArmed(CARD, answers={b"river-tile": "River"})
    with api_client(fake) as client:
        fake.armed = True  # after the warm-up
        response = client.post("/predict", files=[image("file", b"river-tile")], headers={"x-request-id": "req-42"})
        assert response.status_code == 500
        assert response.json() == {"error": "internal_error", "detail": "internal error (request id req-42)"}
        assert "secret" not in response.text and "Traceback" not in response.text
        assert client.post("/predict", files=[image("file", b"river-tile")]).json()["label"] == "River"


def test_unknown_paths_and_methods_get_json_errors() -> None:
    with api_client() as client:
        assert client.get("/nope").json() == {"error": "not_found", "detail": "Not Found"}
        wrong = client.get("/predict")
        assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"
