"""`deploy smoke` against the project's own API, started on loopback as a real uvicorn process:
the curl check (GET /readyz, POST /predict with a real EuroSAT image) tested for real."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from eurosat_service.entrypoints import deploy
from tests.conftest import free_port, wait_for_http
from tests.integration.deploy_helpers import run_deploy


@pytest.fixture(scope="module")
def api_url(tiny_model_store, tmp_path_factory) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = tmp_path_factory.mktemp("api") / "api.log"  # read it when a test here fails
    with open(log, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "eurosat_service.entrypoints.api", "--host", "127.0.0.1",
                                 "--port", str(port), "--model-uri", str(tiny_model_store)],
                                env=env, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", timeout=180, proc=proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_smoke_passes_against_the_real_api(api_url, capsys):
    code, out, err = run_deploy(capsys, "smoke", "--url", api_url, "--wait", "120")
    assert code == 0, out + err
    lines = out.strip().splitlines()
    assert lines[0] == f"smoke test of {api_url}"
    assert lines[1].startswith("  PASS  GET /readyz: 200 in ")
    assert lines[2].startswith("  PASS  POST /predict: 200 in ") and "model v" in lines[2]
    assert lines[-1] == "smoke: PASS"


def test_smoke_sends_the_packaged_eurosat_image():
    image = deploy.smoke_image()
    assert image[:3] == b"\xff\xd8\xff" and len(image) > 1000  # a real JPEG tile shipped in the wheel


def test_smoke_fails_clearly_when_nothing_answers(capsys):
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = run_deploy(capsys, "smoke", "--url", url, "--wait", "1")
    assert code == 1 and "Traceback" not in err
    assert "  FAIL  GET /readyz: no answer: [Errno 111] Connection refused" in out and out.endswith("smoke: FAIL\n")


def test_smoke_fails_on_a_non_image_answer(api_url, capsys, tmp_path):
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("this is not a JPEG")
    code, out, _ = run_deploy(capsys, "smoke", "--url", api_url, "--image", str(not_an_image))
    assert code == 1
    assert "  PASS  GET /readyz" in out and "  FAIL  POST /predict: 4" in out  # 415 or 422 from the API


def test_smoke_with_an_unreadable_image_is_one_error_line(capsys, tmp_path):
    missing = tmp_path / "missing.jpg"
    for path, reason in ((missing, "No such file or directory"), (tmp_path, "Is a directory")):
        code, out, err = run_deploy(capsys, "smoke", "--url", "http://127.0.0.1:9", "--image", str(path))
        assert code == 2 and out == ""
        assert err.strip().splitlines() == [f"error: cannot read --image {path}: {reason}"]
