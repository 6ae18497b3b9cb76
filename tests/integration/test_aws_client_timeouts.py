"""The deploy commands' boto3 clients give up on an AWS endpoint that accepts connections but never
answers (a proxy or firewall that swallows traffic) in about a minute, with one error line; with
botocore's defaults each call hung silently for about 6 minutes."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from eurosat_service.adapters import aws_session
from eurosat_service.entrypoints.container import build_container
from tests.integration.deploy_helpers import run_deploy

DEPLOY_SERVICES = ("sts", "logs", "iam", "ec2", "ecs", "ecr")


@pytest.fixture
def silent_endpoint() -> Iterator[tuple[str, list[socket.socket]]]:
    """A TCP server that accepts every connection and never sends a byte; returns its URL and the
    connections it accepted (one per attempt of a call)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except (TimeoutError, OSError):
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in accepted:
            connection.close()
        server.close()


@pytest.fixture
def deploy_env(monkeypatch, tmp_path):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "EUROSAT_AWS_REGION": "us-east-1",
                       "HOME": str(tmp_path / "home")}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "EUROSAT_AWS_PROFILE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"):
        monkeypatch.delenv(key, raising=False)


def test_every_deploy_client_waits_about_a_minute_at_most_per_call(deploy_env):
    container = build_container()
    for service in DEPLOY_SERVICES:
        config = getattr(container, f"{service}_client")().meta.config
        attempts = config.retries["total_max_attempts"]
        assert config.retries["mode"] == "standard" and attempts <= 3, service
        assert config.connect_timeout <= 10 and config.read_timeout <= 30, service
        # standard mode backs off at most 2 ** attempt seconds (random part at its worst) between attempts
        worst = attempts * (config.connect_timeout + config.read_timeout) + sum(2 ** n for n in range(1, attempts))
        assert worst <= 90, (service, worst)
    s3 = container.s3_client().meta.config  # model files: a slow link may pause longer than an API call
    assert s3.read_timeout >= 60


def test_a_silent_endpoint_is_one_error_line_after_the_configured_attempts(deploy_env, silent_endpoint, capsys,
                                                                          monkeypatch):
    url, accepted = silent_endpoint
    monkeypatch.setitem(aws_session.CONTROL_PLANE, "read_timeout", 0.5)  # the real 20 s, scaled down
    monkeypatch.setenv("EUROSAT_AWS_ENDPOINT_URL", url)
    start = time.monotonic()
    code, out, err = run_deploy(capsys, "status", "--name-prefix", "demo")
    assert time.monotonic() - start < 15
    assert code == 2 and out == ""
    assert err.startswith(f'error: cannot reach AWS while service: Read timeout on endpoint URL: "{url}/"')
    assert len(err.strip().splitlines()) == 1
    assert len(accepted) == aws_session.CONTROL_PLANE["retries"]["total_max_attempts"] == 3
