"""Request ids, one JSON log line per request, and the Prometheus metrics."""

from __future__ import annotations

import json
import logging

import pytest

from eurosat_service.entrypoints.json_logging import JsonFormatter
from tests.unit.api_support import api_client, image


def test_one_structured_log_line_per_request(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="eurosat_service.access"), api_client() as client:
        ok = client.post("/predict/batch", files=[image("files", b"river-tile")] * 3,
                         headers={"x-request-id": "abc-123"})
        bad = client.post("/predict", files=[image("file", b"NOTANIMAGE")])
    records = [r for r in caplog.records if r.name == "eurosat_service.access"]
    assert len(records) == 2
    lines = [json.loads(JsonFormatter().format(r)) for r in records]
    assert ok.headers["x-request-id"] == "abc-123"
    assert lines[0]["request_id"] == "abc-123"
    assert lines[0]["endpoint"] == "/predict/batch" and lines[0]["status"] == 200
    assert lines[0]["images"] == 3 and 1 <= lines[0]["batch_size"] <= 3
    assert lines[0]["latency_ms"] > 0
    assert lines[1]["request_id"] == bad.headers["x-request-id"] != "abc-123"
    assert lines[1]["status"] == 415 and lines[1]["error"] == "unsupported_image_format"
    assert all("\n" not in JsonFormatter().format(r) for r in records)


def test_an_unsafe_request_id_is_replaced() -> None:
    with api_client() as client:
        response = client.get("/healthz", headers={"x-request-id": "evil\" id with spaces"})
    assert response.headers["x-request-id"] != "evil\" id with spaces"


def test_a_traceback_stays_on_one_log_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, __import__("sys").exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line and "ValueError: boom" in json.loads(line)["exception"]


def test_metrics_count_requests_by_endpoint_and_status_and_show_batches_queue_and_model() -> None:
    with api_client() as client:
        client.post("/predict", files=[image("file", b"river-tile")])
        client.post("/predict", files=[image("file", b"CORRUPT")])
        client.post("/predict/batch", files=[image("files", b"river-tile")] * 2)
        client.get("/no-such-page")
        client.get("/static-offline-docs/swagger-ui.css")  # the docs' assets: labelled by their folder
        client.get("/static-offline-docs/no-such-file.js")
        text = client.get("/metrics").text
    assert 'eurosat_http_requests_total{endpoint="/predict",method="POST",status="200"} 1.0' in text
    assert 'eurosat_http_requests_total{endpoint="/predict",method="POST",status="422"} 1.0' in text
    assert 'eurosat_http_requests_total{endpoint="/predict/batch",method="POST",status="200"} 1.0' in text
    assert 'eurosat_http_requests_total{endpoint="other",method="GET",status="404"} 1.0' in text
    assert 'eurosat_http_requests_total{endpoint="/static-offline-docs",method="GET",status="200"} 1.0' in text
    assert 'eurosat_http_requests_total{endpoint="/static-offline-docs",method="GET",status="404"} 1.0' in text
    assert 'eurosat_http_request_duration_seconds_count{endpoint="/predict",method="POST",status="200"} 1.0' in text
    assert "eurosat_inference_batch_size_count" in text
    assert "eurosat_images_classified_total 3.0" in text
    assert "eurosat_inference_queue_depth 0.0" in text
    assert 'eurosat_model_info{architecture="fake-net",name="fake",version="v-test",views="1"} 1.0' in text
    assert "eurosat_ready 1.0" in text
    rss = [line for line in text.splitlines() if line.startswith("process_resident_memory_bytes ")]
    assert rss and float(rss[0].split()[1]) > 1e6
    assert 'python_gc_collections_total{generation="0"}' in text


def test_the_entrypoint_serves_with_the_garbage_collector_back_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start-up runs with the collector off (``python -m`` only); main() must turn it back on
    before serving, or reference cycles made per request would never be freed."""
    import gc

    import uvicorn

    from eurosat_service.entrypoints import api, json_logging
    from tests.unit.api_support import fake_classifier, fake_container

    container = fake_container(fake_classifier(), port=0)  # any free port: bound for real
    monkeypatch.setattr(json_logging, "setup_json_logging", lambda: None)  # leave pytest's handlers be
    monkeypatch.setattr(api, "build_container", lambda **overrides: container)
    seen: dict[str, object] = {}

    def serve(server: uvicorn.Server, sockets: list | None = None) -> None:
        seen.update(enabled=gc.isenabled(), frozen=gc.get_freeze_count())
        server.started = True

    monkeypatch.setattr(uvicorn.Server, "run", serve)
    gc.disable()
    try:
        assert api.main([]) == 0
    finally:
        gc.unfreeze()
        gc.enable()
    assert seen["enabled"] is True
    assert seen["frozen"] > 0  # start-up's objects moved out of the collector's way


def test_a_python_warning_becomes_one_json_log_line() -> None:
    """Any library's warning goes through the JSON handler, never as raw text on stderr (a fresh
    interpreter: pytest records warnings itself)."""
    import subprocess
    import sys

    script = ("import warnings\n"
              "from eurosat_service.entrypoints.json_logging import setup_json_logging\n"
              "setup_json_logging()\n"
              "warnings.warn('something odd', RuntimeWarning)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    entry = json.loads(lines[0])
    assert entry["logger"] == "py.warnings" and entry["level"] == "warning"
    assert "RuntimeWarning: something odd" in entry["message"]

