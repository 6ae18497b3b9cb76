"""The image release use case and its domain rules, against in-memory fakes."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eurosat_service.adapters.docker_cli_builder import DockerCliBuilder
from eurosat_service.adapters.engine_process import (
    DEFAULT_IDLE_TIMEOUT,
    BuildProgress,
    PushProgress,
    StreamedCommand,
    stage_files,
)
from eurosat_service.domain.container_image import ImageRelease, RegistryLogin, check_repository_name, image_tag
from eurosat_service.domain.errors import BuildError, EurosatError
from eurosat_service.service_layer.image_release import release_image
from tests.unit.fakes import FakeImageBuilder, FakeImageRegistry

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
TAGS = {"project": "eurosat-service", "eurosat-service:deployment": "eurosat"}


def release(builder, registry, tmp_path: Path, **overrides) -> ImageRelease:
    kwargs = dict(context=tmp_path, repository="eurosat-service", revision="abc123def456",
                  model_version="v20251126-2300", version="0.1.0", tags=TAGS, keep_images=5)
    return release_image(builder, registry, **{**kwargs, **overrides})


def test_builds_tags_and_pushes_with_revision_and_model_version(tmp_path):
    registry = FakeImageRegistry()
    builder = FakeImageBuilder(registry)
    steps: list[str] = []

    result = release(builder, registry, tmp_path, build_args={"BASE_IMAGE": "local/base"}, on_step=steps.append)

    assert result.tag == "abc123def456-v20251126-2300"
    assert result.repository == f"{HOST}/eurosat-service"
    assert result.uri == f"{HOST}/eurosat-service@{result.digest}" and result.digest.startswith("sha256:")
    assert result.built
    assert registry.pushed[result.repository][result.tag] == result.digest
    assert registry.repositories["eurosat-service"] == {"tags": TAGS, "keep": 5}
    (build,) = builder.builds
    assert build["tag"] == "eurosat-service:abc123def456-v20251126-2300"
    assert build["args"] == {"BASE_IMAGE": "local/base", "VERSION": "0.1.0", "GIT_REVISION": "abc123def456"}
    assert any("created repository" in s for s in steps) and any(s.startswith("pushed ") for s in steps)


def test_an_already_pushed_tag_is_reused_without_building(tmp_path):
    registry = FakeImageRegistry()
    first = release(FakeImageBuilder(registry), registry, tmp_path)
    builder = FakeImageBuilder(registry)

    again = release(builder, registry, tmp_path)

    assert builder.builds == []
    assert (again.uri, again.built) == (first.uri, False)


def test_uncommitted_changes_get_the_build_time_in_the_tag(tmp_path):
    registry = FakeImageRegistry()
    at = datetime(2025, 11, 26, 23, 5, 9, tzinfo=UTC)

    result = release(FakeImageBuilder(registry), registry, tmp_path, dirty=True, now=lambda: at)

    assert result.tag == "abc123def456-v20251126-2300-dirty-20251126t230509"


def test_a_pip_certificate_is_staged_for_the_build_and_passed_as_build_argument(tmp_path):
    cert = tmp_path / "proxy-ca.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    registry = FakeImageRegistry()
    builder = FakeImageBuilder(registry)

    release(builder, registry, tmp_path, pip_cert=cert)

    (build,) = builder.builds
    assert build["staged"] == {"docker/build-certs/pip-cert.pem": b"-----BEGIN CERTIFICATE-----\n"}
    assert build["args"]["PIP_CERT"] == "/build/certs/pip-cert.pem"


def test_a_failed_build_pushes_nothing_and_the_next_run_reuses_the_repository(tmp_path):
    registry = FakeImageRegistry()
    with pytest.raises(BuildError, match="pip failed"):
        release(FakeImageBuilder(registry, fail_build="pip failed"), registry, tmp_path)
    assert registry.pushed == {}

    steps: list[str] = []
    result = release(FakeImageBuilder(registry), registry, tmp_path, on_step=steps.append)

    assert result.built and any(s.startswith("using repository") for s in steps)


def test_refused_registry_credentials_are_a_build_error(tmp_path):
    registry = FakeImageRegistry()
    builder = FakeImageBuilder(FakeImageRegistry(password="another"))
    with pytest.raises(BuildError, match="expired or wrong registry credentials"):
        release(builder, registry, tmp_path)


@pytest.mark.parametrize("revision, model_version", [("abc/def", "v1"), ("abc", "v 1"), ("", "-v1")])
def test_tags_docker_would_refuse_are_refused_up_front(revision, model_version):
    with pytest.raises(BuildError, match="not a valid image tag"):
        image_tag(revision, model_version)


@pytest.mark.parametrize("name", ["Eurosat", "euro sat", "-eurosat", "e", "eurosat//api"])
def test_invalid_repository_names_are_refused(name):
    with pytest.raises(BuildError, match="not a valid repository name"):
        check_repository_name(name)


def test_build_progress_follows_legacy_buildkit_and_buildah_steps():
    progress = BuildProgress(enabled=False, label="build")
    progress("Step 3/27 : RUN python3 -m venv /opt/venv")
    assert (progress.bar.n, progress.bar.total) == (3, 27)
    progress("#9 [build 4/9] RUN pip install --no-compile .")
    assert (progress.bar.n, progress.bar.total) == (4, 9)
    progress("[2/2] STEP 5/12: COPY --from=build /opt/venv /opt/venv")
    assert (progress.bar.n, progress.bar.total) == (5, 12)
    progress.close()


def test_push_progress_counts_layers_and_finds_the_digest():
    progress = PushProgress(enabled=False, label="push")
    for line in ["The push refers to repository [127.0.0.1:5000/eurosat-service]",
                 "5f70bf18a086: Preparing", "a3ed95caeb02: Preparing", "5f70bf18a086: Pushed",
                 "a3ed95caeb02: Layer already exists",
                 "abc: digest: sha256:" + "ab" * 32 + " size: 1234"]:
        progress(line)
    assert (progress.bar.n, progress.bar.total) == (2, 2)
    assert progress.digest == "sha256:" + "ab" * 32
    progress.close()


def test_staged_files_leave_the_context_even_when_the_build_fails(tmp_path):
    source = tmp_path / "ca.pem"
    source.write_text("ca")
    staged = tmp_path / "context" / "docker" / "build-certs" / "pip-cert.pem"
    staged.parent.mkdir(parents=True)
    staged.write_text("left by a killed run")

    with pytest.raises(RuntimeError), stage_files(tmp_path / "context", {"docker/build-certs/pip-cert.pem": source}):
        assert staged.read_text() == "ca"
        raise RuntimeError("build failed")

    assert not staged.exists()


def fake_docker(tmp_path: Path, push_output: str, push_code: int) -> str:
    """A `docker` stand-in: login and tag succeed, push prints ``push_output`` and exits ``push_code``."""
    script = tmp_path / "docker"
    script.write_text(f"""#!/bin/sh
for arg in "$@"; do
  case "$arg" in
    login) cat >/dev/null; echo "Login Succeeded"; exit 0 ;;
    tag) exit 0 ;;
    push) printf '%s\\n' "{push_output}"; exit {push_code} ;;
  esac
done
exit 2
""")
    script.chmod(0o755)
    return str(script)


def test_a_denied_push_is_reported_as_such(tmp_path):
    docker = fake_docker(tmp_path, "denied: User is not authorized to perform: ecr:InitiateLayerUpload", 1)
    builder = DockerCliBuilder(executable=docker, show_progress=False)

    with pytest.raises(BuildError, match="denied the push .*ecr:PutImage"):
        builder.push("eurosat-service:abc", f"{HOST}/eurosat-service:abc", RegistryLogin(HOST, "AWS", "token"))


def test_the_pushed_digest_comes_from_the_push_output(tmp_path):
    digest = "sha256:" + "0f" * 32
    docker = fake_docker(tmp_path, f"abc: digest: {digest} size: 1573", 0)
    builder = DockerCliBuilder(executable=docker, show_progress=False)

    assert builder.push("eurosat-service:abc", f"{HOST}/eurosat-service:abc", RegistryLogin(HOST, "AWS", "t")) == digest


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "engine"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_a_command_that_stops_printing_is_killed_with_its_children(tmp_path):
    # the background sleep keeps the output pipe open: killing the shell alone would hang here for 60 s
    hung = script(tmp_path, "echo 'Step 1/2 : RUN pip install torch'\nsleep 60 &\nsleep 60")
    command = StreamedCommand([hung, "build", "."], idle_timeout=0.5)
    lines: list[str] = []
    start = time.monotonic()
    with pytest.raises(BuildError, match=r"printed nothing for 0.5 s and was stopped.*EUROSAT_IMAGE_IDLE_TIMEOUT_S"):
        command.run(lines.append)
    assert time.monotonic() - start < 10
    assert lines == ["Step 1/2 : RUN pip install torch"] and "RUN pip install torch" in command.output()


def test_a_slow_command_that_keeps_printing_is_not_stopped(tmp_path):
    steady = script(tmp_path, "for i in 1 2 3 4 5 6 7 8 9 10; do echo \"layer $i\"; sleep 0.15; done")
    lines: list[str] = []
    assert StreamedCommand([steady], idle_timeout=0.6).run(lines.append) == 0  # 1.5 s in all, never 0.6 s silent
    assert len(lines) == 10


def test_the_idle_timeout_setting_reaches_the_builder(monkeypatch):
    from eurosat_service.entrypoints.container import build_container

    monkeypatch.setenv("EUROSAT_IMAGE_IDLE_TIMEOUT_S", "90")
    assert build_container().image_builder.kwargs["idle_timeout"]() == 90  # what open_image_builder gets
    monkeypatch.setenv("EUROSAT_IMAGE_IDLE_TIMEOUT_S", "soon")
    with pytest.raises(EurosatError, match="EUROSAT_IMAGE_IDLE_TIMEOUT_S"):
        build_container()
    assert StreamedCommand(["true"]).idle_timeout == DEFAULT_IDLE_TIMEOUT
