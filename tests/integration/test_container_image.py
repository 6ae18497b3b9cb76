"""The real Dockerfile, built, run and pushed with real parts (``pytest -m container`` runs it alone).

What it needs (``.ci/start-docker.sh``, ``.ci/start-registry.sh``; the fixtures call the first and
``.ci/build-base-image.sh`` themselves):
- a Docker engine: ``$DOCKER_HOST`` if one answers, else the private one the script starts;
- a base image: no registry can be pulled from here, so Debian bookworm made with debootstrap,
  cached in ``/var/cache/eurosat-ci`` and in the engine, so only the first run pays ~2.5 min;
- a CPU-only torch wheel for Python 3.11 (``$EUROSAT_TEST_WHEELS``, default ``/opt/wheels``),
  served to the build over a loopback HTTP server in place of the PyTorch index;
- ``docker-registry`` and ``htpasswd``: a registry with ECR's login (user ``AWS``, the password
  moto's token decodes to), standing in for ECR's registry endpoint, which moto lacks.
The build reuses the engine's layer cache between runs; the first build takes a few minutes.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from eurosat_service.adapters.docker_cli_builder import DockerCliBuilder
from eurosat_service.adapters.ecr_registry import MANIFEST_TYPES
from eurosat_service.domain.container_image import PIP_CERT_IN_BUILD, PIP_CERT_IN_CONTEXT, RegistryLogin
from eurosat_service.domain.errors import BuildError
from eurosat_service.domain.land_cover import LandCoverClass
from tests.conftest import FIXTURE_EUROSAT, ROOT, SHIPPED_MODEL, free_port

pytestmark = [pytest.mark.container, pytest.mark.timeout(3600)]  # a cold build on a busy 2-core machine

BASE_IMAGE = "eurosat-ci/bookworm-python:3.11"
LOCAL_IMAGE = "eurosat-service:ci-test"  # a fixed tag: the previous run's image is the layer cache
REVISION = "citest"
MAX_UNPACKED = 850_000_000
MAX_COMPRESSED = 300_000_000
WHEELS = Path(os.environ.get("EUROSAT_TEST_WHEELS", "/opt/wheels"))
WHEEL_PORT = int(os.environ.get("EUROSAT_TEST_WHEEL_PORT", "18765"))
CONTEXT_FILES = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "src", "docker")


def docker(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def engine_answers() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "version"], capture_output=True, timeout=30).returncode == 0


@pytest.fixture(scope="module")
def docker_engine() -> Iterator[None]:
    """``$DOCKER_HOST`` if an engine answers there, else the private engine of ``.ci/start-docker.sh``."""
    saved = {k: os.environ.get(k) for k in ("DOCKER_HOST", "DOCKER_BUILDKIT")}
    if not engine_answers():
        if os.geteuid() != 0:
            pytest.skip("no Docker engine answers and starting one needs root: run .ci/start-docker.sh")
        done = subprocess.run(["bash", str(ROOT / ".ci" / "start-docker.sh")], capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, done.stderr
        for line in done.stdout.splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            os.environ[key] = value
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def base_image(docker_engine) -> str:
    done = subprocess.run(["bash", str(ROOT / ".ci" / "build-base-image.sh"), BASE_IMAGE], capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, done.stderr
    return BASE_IMAGE


@pytest.fixture(scope="module")
def torch_wheel_server() -> Iterator[tuple[str, str]]:
    """(find-links URL, requirement) for the local CPU torch wheel, served on the loopback."""
    wheels = sorted(WHEELS.glob("torch-*+cpu-cp311-cp311-*.whl"))
    if not wheels:
        pytest.skip(f"no CPU torch wheel for Python 3.11 in {WHEELS} (set EUROSAT_TEST_WHEELS)")
    version = wheels[-1].name.split("-")[1]
    handler = functools.partial(QuietFiles, directory=str(WHEELS))
    try:  # a fixed port: the URL is a build argument, and a new one would miss the layer cache
        server = http.server.ThreadingHTTPServer(("127.0.0.1", WHEEL_PORT), handler)
    except OSError:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", f"torch=={version}"
    finally:
        server.shutdown()
        server.server_close()


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def build_context(tmp_path_factory, request) -> Path:
    """The project's build inputs in a temporary folder, with the shipped model, or while none is
    trained yet, the tiny test model in its place (never written into the repository)."""
    context = tmp_path_factory.mktemp("image-context")
    for name in CONTEXT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif source.is_file():
            shutil.copy2(source, context / name)
    if not (context / "README.md").exists():
        (context / "README.md").write_text("# eurosat-service\n")  # pyproject's readme
    shipped = (SHIPPED_MODEL / "LATEST").is_file()
    model = SHIPPED_MODEL if shipped else request.getfixturevalue("tiny_model_store")  # trained only if needed
    shutil.copytree(model, context / "models" / "eurosat-resnet18")
    return context


@pytest.fixture(scope="module")
def build_args(base_image, torch_wheel_server) -> dict[str, str]:
    find_links, requirement = torch_wheel_server
    return {"BASE_IMAGE": base_image, "TORCH_INDEX_URL": "https://pypi.org/simple",
            "TORCH_FIND_LINKS": find_links, "TORCH_REQUIREMENT": requirement}


def pip_cert() -> Path | None:
    cert = os.environ.get("PIP_CERT")
    return Path(cert) if cert and Path(cert).is_file() else None


def project_version() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


@pytest.fixture(scope="module")
def built_image(build_context: Path, build_args: dict[str, str]) -> str:
    """The image, built through the project's docker adapter exactly as `deploy image` builds it
    (same arguments), so the command's own build later is a cache hit."""
    args = {**build_args, "VERSION": project_version(), "GIT_REVISION": REVISION}
    staged = {}
    if cert := pip_cert():
        staged[PIP_CERT_IN_CONTEXT] = cert
        args["PIP_CERT"] = PIP_CERT_IN_BUILD
    DockerCliBuilder(network="host", show_progress=False).build(build_context, LOCAL_IMAGE, args, staged)
    return LOCAL_IMAGE


@pytest.fixture(scope="module")
def served(built_image: str) -> Iterator[dict]:
    """The container on the default bridge, its port 80 published on a loopback port."""
    port = free_port()
    name = f"eurosat-ci-test-{os.getpid()}"
    started = time.monotonic()
    docker("run", "--detach", "--name", name, "--publish", f"127.0.0.1:{port}:80", built_image)
    try:
        base = f"http://127.0.0.1:{port}"
        while not answers(f"{base}/readyz"):
            running = docker("inspect", "--format", "{{.State.Running}}", name, check=False).stdout.strip()
            if running != "true" or time.monotonic() - started > 180:
                pytest.fail(f"container not ready:\n{docker('logs', name, check=False).stderr[-3000:]}")
            time.sleep(0.1)
        ready_after = time.monotonic() - started
        print(f"\ncontainer ready {ready_after:.1f}s after `docker run`")
        yield {"url": base, "name": name, "ready_after": ready_after}
    finally:
        docker("rm", "--force", name, check=False)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def post_image(url: str, path: Path) -> tuple[int, dict]:
    boundary = "eurosat-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def test_the_container_answers_readyz_and_predict_over_http(served):
    with urllib.request.urlopen(f"{served['url']}/readyz", timeout=10) as response:
        ready = json.loads(response.read())
    image = FIXTURE_EUROSAT / "2750" / "Forest" / "Forest_1.jpg"

    status, prediction = post_image(f"{served['url']}/predict", image)

    assert ready["status"] == "ready"
    assert status == 200
    assert prediction["label"] in {c.value for c in LandCoverClass}
    assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-3
    assert prediction["model_version"] == ready["model_version"]


def test_it_runs_as_a_non_root_user_listening_on_port_80(served, built_image):
    uid = docker("exec", served["name"], "id", "-u").stdout.strip()
    user = docker("image", "inspect", "--format", "{{.Config.User}}", built_image).stdout.strip()
    listening = docker("exec", served["name"], "python3", "-c",
                       "print(open('/proc/net/tcp').read())").stdout
    assert uid != "0" and user == "10001:10001"
    assert ":0050 " in listening  # 0x50 = 80, in state LISTEN (0A) or serving


def test_its_health_check_needs_no_curl_and_passes(served, built_image):
    check = json.loads(docker("image", "inspect", "--format", "{{json .Config.Healthcheck}}", built_image).stdout)
    assert check["Test"][0] == "CMD" and check["Test"][1] == "python3"

    done = docker("exec", served["name"], *check["Test"][1:], check=False)

    assert done.returncode == 0, done.stderr
    assert docker("exec", served["name"], "sh", "-c", "command -v curl || echo none").stdout.strip() == "none"


def test_the_image_is_lean_labelled_and_free_of_build_leftovers(built_image):
    info = json.loads(docker("image", "inspect", built_image).stdout)[0]
    labels = info["Config"]["Labels"]
    leftovers = docker("run", "--rm", "--entrypoint", "sh", built_image, "-c", """
        site=/opt/venv/lib/python3.11/site-packages
        ls -d $site/torchvision* $site/nvidia* $site/pip $site/setuptools $site/torch/test $site/torch/include \
              $site/torch/bin/test_* /build 2>/dev/null
        find / -xdev \\( -name 'pip-cert.pem' -o -name 'libcudart*' -o -name 'libcudnn*' \\) 2>/dev/null
        command -v gcc cc pip 2>/dev/null; true
    """).stdout.split()

    print(f"\nimage size unpacked: {info['Size'] / 1e6:.0f} MB")
    assert info["Size"] < MAX_UNPACKED
    assert labels["org.opencontainers.image.version"] == project_version()
    assert labels["org.opencontainers.image.revision"] == REVISION
    assert info["Config"]["Env"] and any(e.startswith("EUROSAT_MODEL_URI=/opt/") for e in info["Config"]["Env"])
    assert leftovers == []


# -- pushing through the project's own command, to a registry standing in for ECR -------------


@pytest.fixture
def registry(aws, tmp_path) -> Iterator[dict]:
    """A local registry whose only login is ECR's: user AWS and the password moto's token holds."""
    binary = shutil.which("docker-registry") or shutil.which("registry")
    if not binary or not shutil.which("htpasswd"):
        pytest.skip("needs docker-registry and htpasswd: run .ci/start-registry.sh")
    import boto3

    token = boto3.client("ecr", endpoint_url=aws, region_name="us-east-1").get_authorization_token()
    encoded = token["authorizationData"][0]["authorizationToken"]
    username, _, password = base64.b64decode(encoded).decode().partition(":")
    htpasswd = subprocess.run(["htpasswd", "-Bbn", username, password], capture_output=True, text=True, check=True)
    (tmp_path / "htpasswd").write_text(htpasswd.stdout)
    port = free_port()
    (tmp_path / "config.yml").write_text(json.dumps({  # YAML is a superset of JSON
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "data")}},
        "http": {"addr": f"127.0.0.1:{port}"},
        "auth": {"htpasswd": {"realm": "eurosat-test", "path": str(tmp_path / "htpasswd")}},
    }))
    log = open(tmp_path / "registry.log", "w")
    proc = subprocess.Popen([binary, "serve", str(tmp_path / "config.yml")], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while not registry_answers(port):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "registry.log").read_text()
            time.sleep(0.1)
        yield {"url": f"http://127.0.0.1:{port}", "host": f"127.0.0.1:{port}", "user": username,
               "password": password}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def registry_answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
    except urllib.error.HTTPError as exc:
        return exc.code == 401  # up, and asking for the login
    except OSError:
        return False
    return False


def registry_get(registry: dict, path: str, method: str = "GET") -> tuple[dict, bytes]:
    auth = base64.b64encode(f"{registry['user']}:{registry['password']}".encode()).decode()
    request = urllib.request.Request(f"{registry['url']}{path}", method=method,
                                     headers={"Authorization": f"Basic {auth}", "Accept": ", ".join(MANIFEST_TYPES)})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(response.headers), response.read()


def deploy_image(build_context: Path, build_args: dict[str, str], registry: dict,
                 home: Path) -> subprocess.CompletedProcess:
    """``home`` stands in for the user's home: the command records the pushed image there."""
    argv = [sys.executable, "-m", "eurosat_service.entrypoints.deploy_image", "--context", str(build_context),
            "--revision", REVISION, "--registry-url", registry["url"], "--network", "host", "--keep", "5"]
    for key, value in build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=1500, cwd=ROOT,
                          env={**os.environ, "HOME": str(home)})


def test_the_deploy_command_pushes_to_the_registry_with_ecr_credentials(build_context, build_args, built_image,
                                                                        registry, aws, tmp_path):
    import boto3

    done = deploy_image(build_context, build_args, registry, home=tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    release = json.loads(done.stdout)
    recorded = json.loads((tmp_path / ".cache" / "eurosat-service" / "last-image.json").read_text())
    assert recorded["image_uri"] == release["image"]  # what `deploy up` runs when given no --image-uri
    headers, manifest = registry_get(registry, f"/v2/eurosat-service/manifests/{release['tag']}")
    layers = json.loads(manifest)["layers"]
    compressed = sum(layer["size"] for layer in layers) + json.loads(manifest)["config"]["size"]
    print(f"\npushed {release['image']}: {compressed / 1e6:.0f} MB compressed in {len(layers)} layers")

    assert release["built"] is True
    assert release["tag"].startswith(f"{REVISION}-v")
    assert release["image"] == f"{registry['host']}/eurosat-service@{release['digest']}"
    assert headers["Docker-Content-Digest"] == release["digest"]
    assert compressed < MAX_COMPRESSED
    if shutil.which("skopeo"):
        inspected = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", "--creds", f"{registry['user']}:{registry['password']}",
             f"docker://{registry['host']}/eurosat-service:{release['tag']}"],
            capture_output=True, text=True, timeout=120, check=True)
        assert json.loads(inspected.stdout)["Digest"] == release["digest"]
    ecr = boto3.client("ecr", endpoint_url=aws, region_name="us-east-1")
    (repo,) = ecr.describe_repositories(repositoryNames=["eurosat-service"])["repositories"]
    assert repo["imageTagMutability"] == "IMMUTABLE" and repo["imageScanningConfiguration"]["scanOnPush"]

    again = deploy_image(build_context, build_args, registry, home=tmp_path)  # same revision and model: nothing to do

    assert again.returncode == 0, again.stderr[-4000:]
    assert json.loads(again.stdout) == {**release, "built": False}
    assert "already pushed" in again.stderr
    for tag in (f"{registry['host']}/eurosat-service:{release['tag']}", f"eurosat-service:{release['tag']}"):
        docker("rmi", "--no-prune", tag, check=False)  # untag; the layers stay as the next run's cache


def test_a_refused_registry_login_is_a_clear_error(built_image, registry):
    wrong = RegistryLogin(registry["host"], "AWS", "an-expired-token", plain_http=True)

    with pytest.raises(BuildError, match="expired or wrong registry credentials"):
        DockerCliBuilder(show_progress=False).push(built_image, f"{registry['host']}/eurosat-service:refused", wrong)
