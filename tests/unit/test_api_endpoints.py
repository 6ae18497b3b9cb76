"""Every endpoint of the API, with the container's classifier overridden by a fake."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re

from fastapi.testclient import TestClient

from eurosat_service.domain.land_cover import EUROSAT_CLASSES
from eurosat_service.entrypoints.api import create_app
from tests.unit.api_support import CARD, api_client, fake_classifier, fake_container, image


def test_predict_answers_label_confidence_all_probabilities_and_version() -> None:
    with api_client() as client:
        response = client.post("/predict", files=[image("file", b"river-tile")])
    assert response.status_code == 200
    body = response.json()
    assert body["label"] == "River"
    assert body["confidence"] == 0.9
    assert set(body["probabilities"]) == set(EUROSAT_CLASSES)
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-9
    assert body["model_version"] == "v-test"


def test_batch_answers_in_upload_order() -> None:
    with api_client() as client:
        tiles = [b"river-tile", b"forest-tile", b"other", b"river-tile"]
        response = client.post("/predict/batch", files=[image("files", t) for t in tiles])
    assert response.status_code == 200
    assert [p["label"] for p in response.json()["predictions"]] == ["River", "Forest", "AnnualCrop", "River"]


def test_batch_refuses_more_files_than_the_configured_maximum() -> None:
    with api_client(max_batch_files=3) as client:
        response = client.post("/predict/batch", files=[image("files", b"river-tile")] * 4)
        assert response.status_code == 422
        assert response.json() == {"error": "too_many_files", "detail": "more than 3 files sent; at most 3 per request"}
        assert client.post("/predict/batch", files=[image("files", b"river-tile")] * 3).status_code == 200


def test_batch_limit_is_ours_above_starlettes_default_of_1000_files() -> None:
    """The form is parsed with the configured cap, not Starlette's 1000 (a 400 of its own)."""
    with api_client(max_batch_files=1200) as client:
        response = client.post("/predict/batch", files=[image("files", b"forest-tile")] * 1001)
        assert response.status_code == 200
        assert len(response.json()["predictions"]) == 1001
    with api_client() as client:  # the default, 32
        response = client.post("/predict/batch", files=[image("files", b"forest-tile")] * 1001)
        assert response.status_code == 422
        assert response.json() == {"error": "too_many_files",
                                   "detail": "more than 32 files sent; at most 32 per request"}


def test_too_many_files_are_refused_before_the_rest_of_the_upload_is_read() -> None:
    """The parser stops at the first file over the cap: the other 36 files' bytes are never received."""
    boundary = "b0undary"
    parts = [(f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{i}.jpg\"\r\n"
              f"Content-Type: image/jpeg\r\n\r\n").encode() + b"x" * 1000 + b"\r\n" for i in range(40)]
    chunks = [*parts, f"--{boundary}--\r\n".encode()]
    received, sent = 0, []

    async def receive() -> dict:
        nonlocal received
        received += 1
        return {"type": "http.request", "body": chunks[received - 1], "more_body": received < len(chunks)}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/predict/batch", "raw_path": b"/predict/batch", "root_path": "", "query_string": b"",
             "headers": [(b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
                         (b"content-length", str(sum(map(len, chunks))).encode())],
             "client": ("127.0.0.1", 1234), "server": ("127.0.0.1", 80)}
    asyncio.run(create_app(fake_container(fake_classifier(), max_batch_files=3))(scope, receive, send))
    assert sent[0]["status"] == 422
    assert json.loads(b"".join(m.get("body", b"") for m in sent[1:]))["error"] == "too_many_files"
    assert received == 4  # three files and the fourth's headers; 36 of 40 never read


def test_predict_refuses_several_files_instead_of_answering_for_one_of_them() -> None:
    with api_client() as client:
        response = client.post("/predict", files=[image("file", b"forest-tile"), image("file", b"river-tile")])
        assert response.status_code == 422
        assert response.json() == {
            "error": "too_many_files",
            "detail": "more than one file sent; /predict takes one (send several to /predict/batch)",
        }


def test_concurrent_requests_share_micro_batches() -> None:
    fake = fake_classifier(delay=0.05)
    with api_client(fake, max_wait_ms=20.0, max_batch_size=16) as client:
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: client.post("/predict", files=[image("file", b"x")]).status_code,
                                     range(16)))
    assert statuses == [200] * 16
    served = fake.calls[1:] if fake.calls and fake.calls[0] == 0 else fake.calls
    assert sum(served) == 16 and max(served) > 1  # some requests ran together


def test_health_and_readiness() -> None:
    fake = fake_classifier()
    app = create_app(fake_container(fake))
    client = TestClient(app)
    assert client.get("/healthz").json() == {"status": "ok", "model_version": None}
    assert client.get("/readyz").status_code == 503  # lifespan not run: nothing warmed up yet
    with client:
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "model_version": "v-test"}
        assert fake.warmed_up  # readiness came after the warm-up inference
    assert client.get("/readyz").status_code == 503  # shut down


def test_model_card() -> None:
    with api_client() as client:
        body = client.get("/model").json()
    assert body["version"] == "v-test"
    assert body["class_names"] == list(CARD.class_names)
    assert body["weights_sha256"] == CARD.weights_sha256
    assert "metrics" in body and body["input_size"] == 64


def test_openapi_documents_every_endpoint_and_its_errors() -> None:
    with api_client() as client:
        spec = client.get("/openapi.json").json()
        assert client.get("/docs").status_code == 200
    assert {"/predict", "/predict/batch", "/healthz", "/readyz", "/model", "/metrics"} <= set(spec["paths"])
    predict = spec["paths"]["/predict"]["post"]
    assert {"200", "413", "415", "422", "503"} <= set(predict["responses"])
    assert "PredictionOut" in str(predict["responses"]["200"])


def test_docs_pages_load_their_scripts_and_styles_from_the_service_not_a_cdn() -> None:
    with api_client() as client:
        for page in ("/docs", "/redoc"):
            html = client.get(page).text
            assets = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert assets and all(a.startswith("/") for a in assets), (page, assets)  # no https://cdn...
            assert "fonts.googleapis" not in html
            for asset in assets:
                served = client.get(asset)
                assert served.status_code == 200 and len(served.content) > 500, (asset, served.status_code)


def test_demo_page_is_served_with_a_strict_csp_matching_its_script() -> None:
    with api_client() as client:
        response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert 'id="file"' in html and 'fetch("predict"' in html
    script = re.search(r"<script>(.*?)</script>", html, flags=re.DOTALL).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]
