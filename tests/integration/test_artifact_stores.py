"""A real model published and loaded back through the local store and through S3 on a moto
server over HTTP; the sha256 refusal; and the clear errors S3 gives for each way it refuses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from eurosat_service.adapters.artifact_uri import resolve_model_file
from eurosat_service.adapters.eurosat_files import EuroSATFolder
from eurosat_service.adapters.local_artifact_store import LocalArtifactStore
from eurosat_service.adapters.s3_artifact_store import S3ArtifactStore
from eurosat_service.adapters.sha256 import file_sha256
from eurosat_service.adapters.torch_trainer import TorchTrainer
from eurosat_service.domain.errors import ArtifactIntegrityError, ArtifactNotFound, ModelLoadError, StoreAccessError
from tests.conftest import free_port, wait_for_http

BUCKET = "eurosat-models"
# moto answers its first request after a start slowly (it loads IAM policies): be patient on a busy machine
PATIENT = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=120)
ONE_TRY = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=10)


def s3_client(endpoint: str, key: str = "testing", secret: str = "testing", config: Config = PATIENT):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=config,
                        aws_access_key_id=key, aws_secret_access_key=secret)


def published_files(store_root: Path) -> tuple[str, dict[str, Path]]:
    version = LocalArtifactStore(store_root).latest_version()
    files = {p.name: p for p in sorted((store_root / version).iterdir()) if not p.name.endswith(".sha256")}
    return version, files


def flip_a_byte(path: Path, offset: int = -100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def assert_usable_model(path: Path, fixture_eurosat: Path) -> None:
    """The file loads (weights_only, weights sha256 re-checked) and scores real images."""
    source = EuroSATFolder(fixture_eurosat)
    trainer = TorchTrainer(source, show_progress=False)
    model = trainer.load(path)
    assert model.card is not None and model.card.name == "tiny-test-model"
    probabilities = trainer.predict_probabilities(model, source.list_images()[:4])
    assert len(probabilities) == 4 and all(abs(sum(p) - 1) < 1e-4 for p in probabilities)


# -- local store ----------------------------------------------------------------------------------
def test_local_store_round_trip(tiny_model_store, fixture_eurosat, tmp_path):
    store = LocalArtifactStore(tiny_model_store)
    version, files = published_files(tiny_model_store)
    assert store.versions() == [version]
    assert {"model.pt", "model_card.json", "evaluation.json", "confusion_matrix.png", "split.json"} <= set(files)
    report = json.loads(files["evaluation.json"].read_text())
    assert report["split"] == "test" and 0 <= report["accuracy"] <= 1 and report["model_version"] == version
    for uri in (str(tiny_model_store), str(tiny_model_store / version), str(files["model.pt"])):
        assert resolve_model_file(uri, tmp_path, s3_client=pytest.fail) == files["model.pt"]
    assert_usable_model(files["model.pt"], fixture_eurosat)


def test_local_store_refuses_a_tampered_or_unverifiable_model(tiny_model_store, tmp_path):
    copy = tmp_path / "store"
    shutil.copytree(tiny_model_store, copy)
    version, files = published_files(copy)
    flip_a_byte(files["model.pt"])
    with pytest.raises(ArtifactIntegrityError, match="does not match"):
        resolve_model_file(str(copy), tmp_path / "cache", s3_client=pytest.fail)
    (copy / version / "model.pt.sha256").unlink()
    with pytest.raises(ArtifactIntegrityError, match="no model.pt.sha256"):
        resolve_model_file(str(files["model.pt"]), tmp_path / "cache", s3_client=pytest.fail)


@pytest.mark.parametrize("layout", ["missing", "empty-folder"])
def test_local_uri_errors_name_what_was_expected(tmp_path, layout):
    target = tmp_path / "models"
    if layout == "empty-folder":
        target.mkdir()
    with pytest.raises(ArtifactNotFound, match="expected a store folder, a model.pt file, s3://"):
        resolve_model_file(str(target), tmp_path / "cache", s3_client=pytest.fail)


def test_local_store_writability_probe_leaves_nothing_behind(tmp_path, read_only_folder):
    LocalArtifactStore(tmp_path / "new" / "store").check_writable()  # publish would create it
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreAccessError, match=f"{tmp_path / 'file'} is a file, not a folder"):
        LocalArtifactStore(tmp_path / "file" / "store").check_writable()
    locked = read_only_folder(tmp_path / "locked")
    with pytest.raises(StoreAccessError, match=f"writing to {locked} failed \\(Permission denied\\)"):
        LocalArtifactStore(locked).check_writable()
    assert list(locked.iterdir()) == []


def test_local_store_copy_failing_mid_publish_keeps_latest(tiny_model_store, tmp_path, monkeypatch):
    store_root = tmp_path / "store"
    shutil.copytree(tiny_model_store, store_root)
    version, files = published_files(store_root)
    sources = {name: shutil.copy(path, tmp_path / name) for name, path in files.items()}
    real_copyfile, copies = shutil.copyfile, []

    def disk_full_on_the_second_file(source, destination):
        copies.append(source)
        if len(copies) == 2:
            raise OSError(28, "No space left on device", str(destination))
        return real_copyfile(source, destination)

    monkeypatch.setattr(shutil, "copyfile", disk_full_on_the_second_file)
    with pytest.raises(StoreAccessError, match="publishing v2 to .* failed \\(No space left on device\\); "
                                               "LATEST was left as it was"):
        LocalArtifactStore(store_root).publish("v2", sources)
    assert LocalArtifactStore(store_root).latest_version() == version
    assert not list((store_root / "v2").glob("*.part"))


def test_an_unreadable_model_file_is_a_model_load_error(tiny_model_store, tmp_path, unreadable_file):
    copy = tmp_path / "store"
    shutil.copytree(tiny_model_store, copy)
    _, files = published_files(copy)
    unreadable_file(files["model.pt"])
    with pytest.raises(ModelLoadError, match=f"cannot read {files['model.pt']}: Permission denied"):
        resolve_model_file(str(copy), tmp_path / "cache", s3_client=pytest.fail)


def test_an_unreadable_or_binary_sidecar_is_refused(tiny_model_store, tmp_path, unreadable_file):
    copy = tmp_path / "store"
    shutil.copytree(tiny_model_store, copy)
    version, files = published_files(copy)
    sidecar = copy / version / "model.pt.sha256"
    sidecar.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ArtifactIntegrityError, match=f"{sidecar} is not text"):
        resolve_model_file(str(files["model.pt"]), tmp_path / "cache", s3_client=pytest.fail)
    unreadable_file(sidecar)
    with pytest.raises(ModelLoadError, match=f"cannot read {sidecar}: Permission denied"):
        resolve_model_file(str(files["model.pt"]), tmp_path / "cache", s3_client=pytest.fail)


# -- S3 on a moto server ----------------------------------------------------------------------------
# A fresh bucket per test instead of the ``aws`` fixture's reset: a reset costs seconds with
# moto's IAM policies loaded, and unique bucket names isolate the tests just as well.
@pytest.fixture
def s3(moto_server) -> tuple:
    client = s3_client(moto_server)
    bucket = f"models-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


def test_s3_round_trip(s3, tiny_model_store, fixture_eurosat, tmp_path):
    client, bucket = s3
    version, files = published_files(tiny_model_store)
    store = S3ArtifactStore(client, bucket, "eurosat/resnet18", show_progress=False)
    with pytest.raises(ArtifactNotFound, match=f"no published model at s3://{bucket}/eurosat/resnet18"):
        store.latest_version()
    published = store.publish(version, files)
    assert published.uri == f"s3://{bucket}/eurosat/resnet18/{version}/model.pt"
    assert published.sha256 == file_sha256(files["model.pt"])
    assert store.latest_version() == version and store.versions() == [version]
    head = client.head_object(Bucket=bucket, Key=f"eurosat/resnet18/{version}/evaluation.json")
    assert head["Metadata"]["sha256"] == file_sha256(files["evaluation.json"])

    latest = resolve_model_file(f"s3://{bucket}/eurosat/resnet18", tmp_path, lambda: client)
    assert latest.read_bytes() == files["model.pt"].read_bytes()
    assert latest == tmp_path / "s3" / bucket / "eurosat/resnet18" / version / "model.pt"
    pinned = resolve_model_file(f"s3://{bucket}/eurosat/resnet18/{version}/model.pt", tmp_path, lambda: client)
    assert pinned == latest and not list(latest.parent.glob("*.part"))
    assert_usable_model(latest, fixture_eurosat)


def test_s3_fetch_is_a_verified_cache(s3, tiny_model_store, tmp_path):
    client, bucket = s3
    version, files = published_files(tiny_model_store)
    store = S3ArtifactStore(client, bucket, "m", show_progress=False)
    store.publish(version, {"model.pt": files["model.pt"]})
    cached = store.fetch(tmp_path)
    os.utime(cached, (1, 1))
    assert store.fetch(tmp_path).stat().st_mtime == 1  # a verified copy is not downloaded again
    flip_a_byte(cached)
    assert file_sha256(store.fetch(tmp_path)) == file_sha256(files["model.pt"])  # a bad copy is replaced


def test_s3_refuses_a_tampered_object(s3, tiny_model_store, tmp_path):
    client, bucket = s3
    version, files = published_files(tiny_model_store)
    store = S3ArtifactStore(client, bucket, "m", show_progress=False)
    store.publish(version, {"model.pt": files["model.pt"]})
    key = f"m/{version}/model.pt"
    recorded = client.head_object(Bucket=bucket, Key=key)["Metadata"]
    tampered = bytearray(files["model.pt"].read_bytes())
    tampered[-100] ^= 0xFF
    client.put_object(Bucket=bucket, Key=key, Body=bytes(tampered), Metadata=recorded)  # same sha256 claimed
    with pytest.raises(ArtifactIntegrityError, match="does not match the recorded"):
        store.fetch(tmp_path)
    assert not list(tmp_path.rglob("model.pt*"))  # neither the bad file nor a .part is left
    client.put_object(Bucket=bucket, Key=key, Body=files["model.pt"].read_bytes())  # no sha256 kept with it
    with pytest.raises(ArtifactIntegrityError, match="no sha256 metadata"):
        store.fetch(tmp_path)


def test_s3_missing_bucket_or_version_is_a_clear_error(s3, moto_server, tmp_path):
    client, bucket = s3
    with pytest.raises(ArtifactNotFound, match=f"s3://{bucket}/m/v9/model.pt does not exist"):
        resolve_model_file(f"s3://{bucket}/m/v9/model.pt", tmp_path, lambda: client)
    store = S3ArtifactStore(client, "no-such-bucket", "m", show_progress=False)
    (tmp_path / "model.pt").write_bytes(b"weights")
    expected = "bucket no-such-bucket does not exist; create it or fix --artifact-uri"
    for attempt in (lambda: store.publish("v1", {"model.pt": tmp_path / "model.pt"}), store.latest_version,
                    store.versions, lambda: store.fetch(tmp_path, "v1"),
                    lambda: resolve_model_file("s3://no-such-bucket/m", tmp_path, lambda: client)):
        with pytest.raises(StoreAccessError, match=expected):
            attempt()


def test_s3_writability_probe_cleans_up(s3):
    client, bucket = s3
    S3ArtifactStore(client, bucket, "m", show_progress=False).check_writable()
    assert "Contents" not in client.list_objects_v2(Bucket=bucket)
    with pytest.raises(StoreAccessError, match="bucket no-such-bucket does not exist"):
        S3ArtifactStore(client, "no-such-bucket", "m").check_writable()


def test_s3_writability_probe_leaves_no_version_behind_in_a_versioned_bucket(s3):
    client, _ = s3
    bucket = f"versioned-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    S3ArtifactStore(client, bucket, "m", show_progress=False).check_writable()
    listing = client.list_object_versions(Bucket=bucket)
    assert "Versions" not in listing and "DeleteMarkers" not in listing  # not even a delete marker


def test_s3_unwritable_model_cache_is_a_model_load_error(s3, tiny_model_store, tmp_path):
    client, bucket = s3
    version, files = published_files(tiny_model_store)
    S3ArtifactStore(client, bucket, "m", show_progress=False).publish(version, {"model.pt": files["model.pt"]})
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(ModelLoadError, match="cannot use the model cache .* set EUROSAT_MODEL_CACHE_DIR"):
        resolve_model_file(f"s3://{bucket}/m", tmp_path / "file" / "cache", lambda: client)


def test_s3_without_credentials_is_a_clear_error(moto_server, monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = boto3.session.Session(region_name="us-east-1").client("s3", endpoint_url=moto_server, config=ONE_TRY)
    with pytest.raises(StoreAccessError, match="no usable AWS credentials"):
        S3ArtifactStore(client, BUCKET, "m").latest_version()


def test_s3_unreachable_endpoint_is_a_clear_error():
    client = s3_client(f"http://127.0.0.1:{free_port()}", config=ONE_TRY)
    with pytest.raises(StoreAccessError, match="cannot reach S3"):
        S3ArtifactStore(client, BUCKET, "m").versions()


# -- S3 that checks credentials and permissions (a second moto server, with IAM auth on) ------------
@pytest.fixture(scope="module")
def authenticating_s3() -> Iterator[tuple[str, dict[str, str]]]:
    """A moto server enforcing IAM after its first 4 actions, which create a bucket and a user
    allowed to list and read it but not to write; returns the endpoint and that user's keys."""
    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "4"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{endpoint}/moto-api/", proc=proc)
        s3_client(endpoint).create_bucket(Bucket=BUCKET)
        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", config=PATIENT,
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        iam.create_user(UserName="reader")
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        iam.put_user_policy(UserName="reader", PolicyName="read-models", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"],
                           "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]}],
        }))
        yield endpoint, {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.parametrize("keys, code", [(("AKIANOSUCHKEY0000000", "x"), "InvalidAccessKeyId"),
                                        ((None, "wrong-secret"), "SignatureDoesNotMatch")])
def test_s3_invalid_credentials_are_a_clear_error(authenticating_s3, keys, code):
    endpoint, reader = authenticating_s3
    client = s3_client(endpoint, keys[0] or reader["key"], keys[1])
    with pytest.raises(StoreAccessError, match=f"credentials expired or invalid \\({code}"):
        S3ArtifactStore(client, BUCKET, "m").latest_version()


def test_s3_denied_upload_leaves_no_latest_pointer(authenticating_s3, tmp_path):
    endpoint, reader = authenticating_s3
    store = S3ArtifactStore(s3_client(endpoint, reader["key"], reader["secret"]), BUCKET, "m", show_progress=False)
    (tmp_path / "model.pt").write_bytes(b"weights")
    with pytest.raises(StoreAccessError, match="upload to s3://eurosat-models/m/v1/model.pt failed: access denied"):
        store.publish("v1", {"model.pt": tmp_path / "model.pt"})
    with pytest.raises(ArtifactNotFound, match="missing s3://eurosat-models/m/LATEST"):
        store.latest_version()


def test_s3_read_only_credentials_fail_the_probe_before_training(authenticating_s3):
    endpoint, reader = authenticating_s3
    store = S3ArtifactStore(s3_client(endpoint, reader["key"], reader["secret"]), BUCKET, "m", show_progress=False)
    with pytest.raises(StoreAccessError, match="writing to s3://eurosat-models/m .* failed: access denied"):
        store.check_writable()
