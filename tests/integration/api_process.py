"""Runs the real API (``python -m eurosat_service.entrypoints.api``) as a uvicorn process on a
free loopback port, for tests/integration/test_api_*. Imported, not collected."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port, wait_for_http


@dataclass
class ApiProcess:
    url: str
    proc: subprocess.Popen
    log: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def request_lines(self, request_id: str, timeout: float = 10.0) -> list[dict]:
        """The JSON log lines that mention ``request_id``, once there are any (the line is written
        after the answer is sent), or none after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not (lines := [json.loads(line) for line in self.log_lines() if request_id in line]):
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        return lines


def api_command(model_uri: str | Path, port: int) -> list[str]:
    return [sys.executable, "-m", "eurosat_service.entrypoints.api",
            "--host", "127.0.0.1", "--port", str(port), "--model-uri", str(model_uri)]


def api_env(workdir: Path, **settings: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EUROSAT_")}
    env["EUROSAT_MODEL_CACHE_DIR"] = str(workdir / "cache")
    env.update({f"EUROSAT_{k.upper()}": str(v) for k, v in settings.items()})
    return env


@contextmanager
def running_api(model_uri: str | Path, workdir: Path, **settings: object) -> Iterator[ApiProcess]:
    """The API, ready (``/readyz`` 200), stopped with SIGTERM afterwards."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"api-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(api_command(model_uri, port), env=api_env(workdir, **settings),
                                stdout=out, stderr=subprocess.STDOUT)
    api = ApiProcess(f"http://127.0.0.1:{port}", proc, log)
    try:
        try:
            wait_for_http(f"{api.url}/readyz", timeout=180, proc=proc)
        except (RuntimeError, TimeoutError) as exc:
            raise AssertionError(f"{exc}; server log:\n{log.read_text(errors='replace')[-3000:]}") from None
        yield api
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
