"""Overload: with a tiny queue, a burst of concurrent requests gets 503 + Retry-After for what
does not fit, 200 for the rest, nothing else; the service answers normally afterwards."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import real_images
from tests.integration.api_process import running_api

pytestmark = pytest.mark.timeout(600)


def test_a_full_queue_answers_503_with_retry_after_and_recovers(served_model: Path, tmp_path: Path) -> None:
    tiles = [p.read_bytes() for p in real_images()[:8]]
    with running_api(served_model, tmp_path, max_queue=2, max_batch_size=1, max_wait_ms=0,
                     inference_threads=1) as api:

        def fire(n: int) -> tuple[int, str | None, dict]:
            with httpx.Client(base_url=api.url, timeout=120) as client:
                if n % 2:
                    response = client.post("/predict/batch", files=[("files", ("t.jpg", t, "image/jpeg")) for t in tiles])
                else:
                    response = client.post("/predict", files={"file": ("t.jpg", tiles[n % 8], "image/jpeg")})
                return response.status_code, response.headers.get("retry-after"), response.json()

        with ThreadPoolExecutor(16) as pool:  # bounded: 48 requests, 16 at a time, on loopback
            results = list(pool.map(fire, range(48)))
        statuses = Counter(status for status, _, _ in results)
        assert set(statuses) <= {200, 503}, statuses
        assert statuses[503] >= 1 and statuses[200] >= 1, statuses
        for status, retry_after, body in results:
            if status == 503:
                assert retry_after == "1"
                assert body["error"] == "overloaded" and "queue is full" in body["detail"]
            else:
                assert "label" in body or len(body["predictions"]) == 8

        with httpx.Client(base_url=api.url, timeout=60) as client:
            after = client.post("/predict", files={"file": ("t.jpg", tiles[0], "image/jpeg")})
            assert after.status_code == 200
            metrics = client.get("/metrics").text
        counted = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                      if line.startswith("eurosat_http_requests_total{") and 'status="503"' in line)
        assert counted == statuses[503]
