"""The real API in a uvicorn process on loopback with a real model: every endpoint, every bad
input, parity with the training side, structured logs, graceful shutdown, refused startups."""

from __future__ import annotations

import io
import json
import shutil
import signal
import socket
import struct
import subprocess
import time
import zlib
from pathlib import Path

import httpx
import pytest
from PIL import Image

from eurosat_service.domain.land_cover import EUROSAT_CLASSES
from tests.conftest import FIXTURE_EUROSAT, free_port, real_images
from tests.integration.api_process import api_command, api_env, running_api

UPLOAD_LIMIT = 1_000_000
pytestmark = pytest.mark.timeout(1200)


@pytest.fixture(scope="module")
def api(served_model: Path, tmp_path_factory: pytest.TempPathFactory):
    with running_api(served_model, tmp_path_factory.mktemp("api"), max_upload_bytes=UPLOAD_LIMIT) as process:
        yield process


@pytest.fixture(scope="module")
def client(api):
    with httpx.Client(base_url=api.url, timeout=60) as c:
        yield c


def read_response(conn: socket.socket) -> bytes:
    """One HTTP/1.1 response with a Content-Length, read off a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"connection closed mid-response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = conn.recv(65536)
        assert chunk, f"connection closed mid-response: {data!r}"
        body += chunk
    return head + b"\r\n\r\n" + body


def post_image(client: httpx.Client, data: bytes, name: str = "tile.jpg") -> httpx.Response:
    return client.post("/predict", files={"file": (name, data, "application/octet-stream")})


def assert_still_serving(client: httpx.Client) -> None:
    response = post_image(client, real_images()[0].read_bytes())
    assert response.status_code == 200, response.text


def png_bomb(side: int = 30_000) -> bytes:
    """A valid 1-bit grayscale PNG of side x side pixels: ~110 KB that would decode to gigabytes
    of RGB. Written chunk by chunk (building it with Pillow would allocate the whole image)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row * 1000) for _ in range(side // 1000)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# -- endpoints ----------------------------------------------------------------------------------
def test_health_readiness_model_card_docs_and_demo(client: httpx.Client) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    card = client.get("/model").json()
    assert ready.status_code == 200 and ready.json()["model_version"] == card["version"]
    assert card["class_names"] == list(EUROSAT_CLASSES)
    assert len(card["weights_sha256"]) == 64 and card["input_size"] == 64
    assert client.get("/openapi.json").json()["paths"].keys() >= {"/predict", "/predict/batch", "/model"}
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and 'id="file"' in page.text


def test_predict_one_and_a_batch_of_real_images(client: httpx.Client) -> None:
    images = real_images()[:6]
    singles = [post_image(client, p.read_bytes(), p.name) for p in images]
    assert all(r.status_code == 200 for r in singles)
    for response in singles:
        body = response.json()
        assert body["label"] in EUROSAT_CLASSES
        assert set(body["probabilities"]) == set(EUROSAT_CLASSES)
        assert abs(sum(body["probabilities"].values()) - 1) < 1e-4
        assert body["confidence"] == max(body["probabilities"].values())
    batch = client.post("/predict/batch", files=[("files", (p.name, p.read_bytes(), "image/jpeg")) for p in images])
    assert batch.status_code == 200
    for one, many in zip(singles, batch.json()["predictions"]):
        assert many["label"] == one.json()["label"]
        for name, p in one.json()["probabilities"].items():
            assert abs(many["probabilities"][name] - p) < 1e-5


def test_any_common_format_and_size_is_accepted(client: httpx.Client) -> None:
    with Image.open(real_images()[0]) as tile:
        tile.load()
    variants = {
        "png": ("PNG", tile.convert("RGBA")), "gray.png": ("PNG", tile.convert("L")),
        "palette.png": ("PNG", tile.convert("P")), "webp": ("WEBP", tile), "tiff": ("TIFF", tile),
        "big.jpg": ("JPEG", tile.resize((640, 480))),
    }
    for name, (fmt, image) in variants.items():
        buffer = io.BytesIO()
        image.save(buffer, fmt)
        response = post_image(client, buffer.getvalue(), name)
        assert response.status_code == 200, (name, response.text)


def test_metrics_show_requests_batches_queue_and_model(client: httpx.Client) -> None:
    post_image(client, real_images()[1].read_bytes())
    text = client.get("/metrics").text
    version = client.get("/model").json()["version"]
    assert 'eurosat_http_requests_total{endpoint="/predict",method="POST",status="200"}' in text
    assert 'eurosat_http_request_duration_seconds_bucket{endpoint="/predict"' in text
    assert "eurosat_inference_batch_size_bucket" in text
    assert "eurosat_inference_queue_depth" in text
    assert f'version="{version}"' in text


# -- bad input ----------------------------------------------------------------------------------
def test_an_upload_above_the_limit_is_413(client: httpx.Client) -> None:
    response = post_image(client, b"\xff" * (UPLOAD_LIMIT + 1))
    assert response.status_code == 413 and response.json()["error"] == "upload_too_large"

    def chunked():  # no Content-Length: the server must count and stop
        yield b'--XX\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
        for _ in range(40):
            yield b"\xff" * 65536
        yield b"\r\n--XX--\r\n"

    streamed = client.post("/predict", content=chunked(), headers={"content-type": "multipart/form-data; boundary=XX"})
    assert streamed.status_code == 413 and streamed.json()["error"] == "upload_too_large"
    assert_still_serving(client)


def test_an_upload_refused_from_its_content_length_closes_the_connection(api, client: httpx.Client) -> None:
    # Kept alive, uvicorn would read (and discard) all 5 GB the headers announce after the 413.
    with socket.create_connection(("127.0.0.1", api.port), timeout=30) as conn:
        conn.sendall(b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=B\r\n"
                     b"Content-Length: 5000000000\r\n\r\n")  # and not one byte of the body
        head = read_response(conn)
        assert head.startswith(b"HTTP/1.1 413") and b"upload_too_large" in head, head
        assert b"\r\nconnection: close\r\n" in head.lower()
        conn.settimeout(10)
        try:
            assert conn.recv(65536) == b""  # closed by the server
        except TimeoutError:
            pytest.fail("the server kept the connection open after its 413, waiting for the body")
    assert_still_serving(client)


def test_a_client_that_leaves_mid_upload_is_logged_as_499_not_as_a_bad_request(api, client: httpx.Client) -> None:
    marker = f"gone-{time.time_ns()}"
    part = (b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + real_images()[0].read_bytes()[:500])
    with socket.create_connection(("127.0.0.1", api.port), timeout=30) as conn:
        conn.sendall(b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=B\r\n"
                     b"X-Request-ID: " + marker.encode() + b"\r\nContent-Length: 100000\r\n\r\n" + part)
        time.sleep(0.5)  # the server is reading the body when the client goes
    lines = api.request_lines(marker)
    assert lines, "no log line for the abandoned upload"
    assert lines[0]["status"] == 499 and lines[0]["error"] == "client_disconnected", lines
    counted = client.get("/metrics").text
    assert 'eurosat_http_requests_total{endpoint="/predict",method="POST",status="499"}' in counted
    assert_still_serving(client)


def test_a_text_file_is_415(client: httpx.Client) -> None:
    response = post_image(client, Path(__file__).read_bytes(), "notes.txt")
    assert response.status_code == 415
    assert response.json() == {"error": "unsupported_image_format",
                               "detail": "not an image in a supported format (JPEG, PNG, TIFF, WEBP, BMP, GIF)"}
    assert_still_serving(client)


def test_a_truncated_jpeg_is_422(client: httpx.Client) -> None:
    data = real_images()[0].read_bytes()
    response = post_image(client, data[: len(data) // 2])
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_image" and "truncated" in response.json()["detail"]
    assert "Traceback" not in response.text
    assert_still_serving(client)


def test_a_decompression_bomb_is_refused_without_decoding_it(api, client: httpx.Client, monkeypatch) -> None:
    bomb = png_bomb()
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # Pillow's own guard would refuse even the header probe
    with Image.open(io.BytesIO(bomb)) as probe:
        assert probe.size == (30_000, 30_000) and probe.format == "PNG"  # a real PNG
    assert len(bomb) < UPLOAD_LIMIT
    started = time.monotonic()
    response = post_image(client, bomb, "bomb.png")
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "image_too_large" and "30000x30000" in response.json()["detail"]
    assert time.monotonic() - started < 30
    peak_kib = int(next(line.split()[1] for line in Path(f"/proc/{api.proc.pid}/status").read_text().splitlines()
                        if line.startswith("VmHWM:")))
    assert peak_kib < 1_500_000  # decoding 900 million pixels to RGB would need ~2.7 GB
    assert_still_serving(client)


def test_a_missing_file_field_is_422(client: httpx.Client) -> None:
    response = client.post("/predict", files={"image": ("a.jpg", b"x", "image/jpeg")})
    assert response.status_code == 422 and "file" in response.json()["detail"]
    assert client.post("/predict").status_code == 422
    assert client.post("/predict/batch", data={"other": "1"}).status_code == 422
    assert_still_serving(client)


# -- parity -------------------------------------------------------------------------------------
def test_api_probabilities_equal_the_training_side_evaluation(served_model: Path, client: httpx.Client,
                                                              tmp_path: Path) -> None:
    from eurosat_service.adapters.artifact_uri import resolve_model_file
    from eurosat_service.adapters.eurosat_files import EuroSATFolder
    from eurosat_service.adapters.torch_trainer import TorchTrainer

    source = EuroSATFolder(FIXTURE_EUROSAT)
    images = source.list_images()
    trainer = TorchTrainer(source, show_progress=False)
    model = trainer.load(resolve_model_file(str(served_model), tmp_path, s3_client=lambda: None))
    expected = trainer.predict_probabilities(model, images)

    files = [("files", (i.path, source.read(i), "image/jpeg")) for i in images]
    response = client.post("/predict/batch", files=files)
    assert response.status_code == 200, response.text
    served = response.json()["predictions"]
    assert len(served) == len(images) == 30
    worst = max(abs(prediction["probabilities"][name] - p)
                for prediction, row in zip(served, expected)
                for name, p in zip(model.class_names, row))
    assert worst < 1e-5, f"largest probability difference {worst:.2e}"
    one = post_image(client, source.read(images[7])).json()  # a batch of one, through /predict
    assert max(abs(one["probabilities"][n] - p) for n, p in zip(model.class_names, expected[7])) < 1e-5


# -- logs ---------------------------------------------------------------------------------------
def test_one_json_log_line_per_request(api, client: httpx.Client) -> None:
    marker = f"log-test-{time.time_ns()}"
    client.post("/predict", files={"file": ("a.jpg", real_images()[2].read_bytes(), "image/jpeg")},
                headers={"x-request-id": marker})
    lines = api.request_lines(marker)
    assert len(lines) == 1
    line = lines[0]
    assert line["endpoint"] == "/predict" and line["status"] == 200 and line["batch_size"] >= 1
    assert line["latency_ms"] > 0 and line["level"] == "info"
    for raw in api.log_lines():  # every line the server wrote is one JSON object
        json.loads(raw)


# -- lifecycle ----------------------------------------------------------------------------------
def test_graceful_shutdown_finishes_the_request_in_flight(served_model: Path, tmp_path: Path) -> None:
    image = real_images()[3].read_bytes()
    body = (b'--B\r\nContent-Disposition: form-data; name="file"; filename="t.jpg"\r\n\r\n' + image + b"\r\n--B--\r\n")
    with running_api(served_model, tmp_path) as api:
        port = api.port
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn, \
                socket.create_connection(("127.0.0.1", port), timeout=30) as probe:
            probe.sendall(b"GET /readyz HTTP/1.1\r\nHost: test\r\n\r\n")  # a load balancer's kept-alive probe
            assert read_response(probe).startswith(b"HTTP/1.1 200")
            conn.sendall(b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary=B\r\n"
                         + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:100])
            time.sleep(0.5)
            api.proc.send_signal(signal.SIGTERM)  # the request has started but its body is not complete
            time.sleep(1.0)
            with pytest.raises(OSError):  # no new connections once shutting down
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            assert probe.recv(65536) == b""  # nor probes on idle ones: closed at once (so no 503 to see)
            assert api.proc.poll() is None  # still finishing the request in flight
            conn.sendall(body[100:])
            response = b""
            while not response.endswith(b"}") and (chunk := conn.recv(65536)):
                response += chunk
        assert response.startswith(b"HTTP/1.1 200"), response[:200]
        assert b'"label"' in response
        assert api.proc.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "stopped" in api.log.read_text()


def test_a_port_flag_out_of_range_stops_startup_with_one_line_before_loading(tmp_path: Path) -> None:
    # The model URI does not exist either: checked after the model, the port would go unnamed.
    procs = {port: subprocess.Popen(api_command(tmp_path / "no-such-store", port), env=api_env(tmp_path),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for port in (70000, -1)}
    for port, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, (port, err)
        assert err.splitlines() == [f"error: invalid setting: --port: Input should be "
                                    f"{'less than or equal to 65535' if port > 0 else 'greater than or equal to 0'}"]


def test_a_port_in_use_stops_startup_with_one_line_before_loading(tmp_path: Path) -> None:
    """The port is bound before the model loads: no "ready" line, then a bind error, as when
    uvicorn bound it after the warm-up. (The model URI does not exist: it is never reached.)"""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(api_command(tmp_path / "no-such-store", port), env=api_env(tmp_path),
                              capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"error: cannot listen on 127.0.0.1:{port}: Address already in use"], proc.stderr


def _broken_stores(good: Path, tmp_path: Path) -> dict[str, Path]:
    version = (good / "LATEST").read_text().strip()
    wrong_sha = tmp_path / "wrong-sha"
    shutil.copytree(good, wrong_sha)
    (wrong_sha / version / "model.pt.sha256").write_text("0" * 64 + "  model.pt\n")
    not_model = tmp_path / "not-a-model" / "model.pt"
    not_model.parent.mkdir()
    not_model.write_bytes(b"these are not the weights you are looking for")
    import hashlib

    (not_model.parent / "model.pt.sha256").write_text(hashlib.sha256(not_model.read_bytes()).hexdigest() + "  model.pt\n")
    return {"missing": tmp_path / "no-such-store", "wrong sha256": wrong_sha, "not a model": not_model}


def test_a_model_that_cannot_be_loaded_stops_startup_with_one_line(served_model: Path, tmp_path: Path) -> None:
    stores = _broken_stores(served_model, tmp_path)
    procs = {}
    for case, uri in stores.items():  # started together: each pays the import of torch
        port = free_port()
        procs[case] = (port, subprocess.Popen(api_command(uri, port), env=api_env(tmp_path),
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    expected = {"missing": "no such file or folder", "wrong sha256": "does not match", "not a model": "not a"}
    for case, (port, proc) in procs.items():
        _, err = proc.communicate(timeout=900)  # generous: importing torch on a busy machine
        assert proc.returncode == 2, (case, err)
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines and lines[-1].startswith("error: ") and expected[case] in lines[-1], (case, err)
        assert "Traceback" not in err, (case, err)
        assert not any('"Uvicorn running' in line for line in lines)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
