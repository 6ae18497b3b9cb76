"""The train and evaluate commands as users run them: real subprocesses where the process
boundary matters (exit codes, stdout JSON, no traceback), in-process ``main`` elsewhere (fast)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import boto3
import pytest
import torch

from eurosat_service.adapters.torch_trainer import TorchTrainer
from eurosat_service.entrypoints import cli, evaluate, train
from eurosat_service.entrypoints.settings import PROJECT_ROOT, Settings

TRAIN_FLAGS = ["--batch-size", "8", "--threads", "1", "--no-progress"]


def scratch(tmp_path: Path) -> list[str]:
    """A run's checkpoint and work folders in the test's own folder, never the project's runs/."""
    return ["--checkpoint-dir", str(tmp_path / "ckpt"), "--work-dir", str(tmp_path / "work")]


def run_module(module: str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", f"eurosat_service.entrypoints.{module}", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def run_main(main, args: list[str], capsys) -> tuple[int, str, str]:
    """``cli.run(main)`` in-process: the exit code, stdout and stderr a user would see."""
    with pytest.raises(SystemExit) as exited:
        cli.run(lambda: main(args))
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def zip_dataset(root: Path, archive: Path) -> Path:
    return Path(shutil.make_archive(str(archive.with_suffix("")), "zip", root_dir=root))


@pytest.fixture
def aws_env(moto_server, monkeypatch) -> str:
    """Like the ``aws`` fixture minus its state reset, which takes seconds on a busy machine (moto
    reloads its IAM policies); each test here uses its own bucket instead."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                       "EUROSAT_AWS_REGION": "us-east-1", "EUROSAT_AWS_ENDPOINT_URL": moto_server}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_server


def test_sigterm_stops_training_like_ctrl_c_keeping_the_last_checkpoint(make_dataset, tmp_path):
    data = make_dataset(4)
    command = [sys.executable, "-m", "eurosat_service.entrypoints.train", "--data-dir", str(data),
               "--artifact-uri", str(tmp_path / "store"), *scratch(tmp_path), "--epochs", "500", *TRAIN_FLAGS]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # wait until an epoch is done (and its checkpoint written)
            if " epoch 2/500 " in line:
                break
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, rest
    assert "Traceback" not in rest and rest.rstrip().splitlines()[-1].startswith("interrupted")
    assert (tmp_path / "ckpt" / "last.pt").is_file() and not (tmp_path / "store").exists()


def test_interrupted_training_resumes_and_publishes_to_s3(aws_env, make_dataset, tmp_path, monkeypatch, capsys):
    data = make_dataset(4)
    bucket = f"eurosat-models-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    flags = ["--data-dir", str(data), "--artifact-uri", f"s3://{bucket}/eurosat",
             "--checkpoint-dir", str(tmp_path / "ckpt"), "--work-dir", str(tmp_path / "work"),
             "--epochs", "2", *TRAIN_FLAGS]

    # Ctrl-C during epoch 2: the run stops cleanly and keeps the checkpoint of epoch 1.
    epoch = TorchTrainer._epoch
    calls = []

    def interrupted_in_epoch_2(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return epoch(self, *args, **kwargs)

    monkeypatch.setattr(TorchTrainer, "_epoch", interrupted_in_epoch_2)
    code, _, err = run_main(train.main, flags, capsys)
    assert code == cli.EXIT_INTERRUPTED == 130
    assert err == (f"interrupted during epoch 2; the checkpoint of epoch 1 is kept in {tmp_path / 'ckpt'}: "
                   "run again with --resume to continue\n")
    assert (tmp_path / "ckpt" / "last.pt").is_file()
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)  # nothing published

    result = run_module("train", *flags, "--resume")
    assert result.returncode == 0, result.stderr
    assert "after epoch 1" in result.stderr and "epoch 2/2" in result.stderr
    summary = json.loads(result.stdout)
    version = summary["version"]
    assert summary["artifact"] == f"s3://{bucket}/eurosat/{version}/model.pt"
    assert summary["split"] == {"train": 20, "val": 10, "test": 10} and 0 <= summary["test_accuracy"] <= 1
    latest = s3.get_object(Bucket=bucket, Key="eurosat/LATEST")["Body"].read().decode().strip()
    assert latest == version
    history = json.loads(s3.get_object(Bucket=bucket, Key=f"eurosat/{version}/history.json")["Body"].read())
    assert [h["epoch"] for h in history] == [1, 2]

    # the published model scores a zipped copy of the data, fetched through the S3 URI
    archive = zip_dataset(data, tmp_path / "EuroSAT.zip")
    code, out, err = run_main(evaluate.main, ["--model-uri", f"s3://{bucket}/eurosat", "--data-dir",
                                              str(archive), "--no-progress"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["model_version"] == version and report["num_images"] == 40 and report["split"] == "all"


def test_evaluate_command_prints_the_json_report(tiny_model_store, make_dataset, tmp_path):
    data = make_dataset(2)
    result = run_module("evaluate", "--model-uri", str(tiny_model_store), "--data-dir", str(data), "--per-image",
                        "--output", str(tmp_path / "out" / "report.json"), "--confusion-png", str(tmp_path / "cm.png"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert 0 <= report["accuracy"] <= 1 and 0 <= report["macro_f1"] <= 1 and report["num_images"] == 20
    assert sum(map(sum, report["confusion_matrix"])) == 20 and len(report["per_class"]) == 10
    assert report["model_version"] == (tiny_model_store / "LATEST").read_text().strip()
    assert len(report["per_image"]) == 20 and "Forest/Forest_1.jpg" in report["per_image"]
    assert all(abs(sum(p.values()) - 1) < 1e-4 for p in report["per_image"].values())
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == report
    assert (tmp_path / "cm.png").read_bytes().startswith(b"\x89PNG")


def test_a_corrupt_archive_is_one_line_and_exit_code_2(make_dataset, tmp_path):
    archive = zip_dataset(make_dataset(1), tmp_path / "EuroSAT.zip")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    result = run_module("train", "--data-dir", str(archive), "--artifact-uri", str(tmp_path / "store"),
                        *scratch(tmp_path), "--epochs", "1", *TRAIN_FLAGS)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "is not a readable zip archive" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "store").exists()


def bad_data(kind: str, make_dataset, tmp_path: Path) -> Path:
    if kind == "missing-dir":
        return tmp_path / "nowhere"
    if kind == "empty-dir":
        (tmp_path / "empty").mkdir()
        return tmp_path / "empty"
    if kind == "file-not-dir":
        (tmp_path / "data.txt").write_text("not a dataset")
        return tmp_path / "data.txt"
    if kind == "images-without-class-folders":
        flat = tmp_path / "flat"
        flat.mkdir()
        for image in (make_dataset(1) / "2750").rglob("*.jpg"):
            shutil.copy(image, flat)
        return flat
    archive = zip_dataset(make_dataset(1), tmp_path / "EuroSAT.zip")  # "damaged-member"
    with zipfile.ZipFile(archive) as z:
        info = z.infolist()[-1]
    data = bytearray(archive.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + 10] ^= 0xFF  # a byte of the member's data
    archive.write_bytes(bytes(data))
    return archive


KINDS = {
    "missing-dir": "does not exist; expected <root>/2750/<ClassName>",
    "empty-dir": "no class folders with images under",
    "file-not-dir": "is not a readable zip archive",
    "images-without-class-folders": "no class folders with images under",
    "damaged-member": "is corrupt (",
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_wrong_data_is_one_clear_line_and_exit_code_2(command, kind, tiny_model_store, make_dataset, tmp_path,
                                                      capsys):
    data = bad_data(kind, make_dataset, tmp_path)
    if command == "train":
        main, args = train.main, ["--artifact-uri", str(tmp_path / "store"), *scratch(tmp_path), "--epochs", "1",
                                  *TRAIN_FLAGS]
    else:
        main, args = evaluate.main, ["--model-uri", str(tiny_model_store), "--no-progress"]
    sigterm = signal.getsignal(signal.SIGTERM)
    code, out, err = run_main(main, ["--data-dir", str(data), *args], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and KINDS[kind] in err, err
    assert signal.getsignal(signal.SIGTERM) is sigterm  # training's own handler ends with it


def test_evaluate_refuses_classes_the_model_does_not_know(tiny_model_store, make_dataset, capsys):
    data = make_dataset(1)
    (data / "2750" / "Forest").rename(data / "2750" / "Glacier")
    code, _, err = run_main(evaluate.main, ["--model-uri", str(tiny_model_store), "--data-dir", str(data)], capsys)
    assert code == 2 and "error: class folder(s) Glacier are not classes of this model" in err


def test_evaluate_refuses_a_missing_model(make_dataset, tmp_path, capsys):
    code, _, err = run_main(evaluate.main, ["--model-uri", str(tmp_path / "none"),
                                            "--data-dir", str(make_dataset(1))], capsys)
    assert code == 2 and err.startswith("error: model URI") and "no such file or folder" in err


def publish_teacher(common: list[str], tmp_path: Path, name: str, capsys, *flags: str) -> dict:
    """Train and publish a one-epoch model to ``tmp_path/name``; its card."""
    code, out, err = run_main(train.main, [*common, *flags, "--artifact-uri", str(tmp_path / name),
                                           "--checkpoint-dir", str(tmp_path / f"{name}-ckpt"),
                                           "--work-dir", str(tmp_path / f"{name}-work")], capsys)
    assert code == 0, err
    return json.loads((tmp_path / name / json.loads(out)["version"] / "model_card.json").read_text())


def test_distilling_from_a_published_model_records_its_teacher(make_dataset, tmp_path, capsys):
    common = ["--data-dir", str(make_dataset(4)), "--epochs", "1", *TRAIN_FLAGS]
    teacher_card = publish_teacher(common, tmp_path, "teacher", capsys)

    code, out, err = run_main(train.main, [*common, "--artifact-uri", str(tmp_path / "student"),
                                           "--distill-from", str(tmp_path / "teacher"), *scratch(tmp_path)], capsys)
    assert code == 0, err
    student = json.loads(out)
    card = json.loads((tmp_path / "student" / student["version"] / "model_card.json").read_text())
    assert card["training"]["teacher_version"] == teacher_card["version"]
    assert card["training"]["teacher_weights_sha256"] == teacher_card["weights_sha256"] != card["weights_sha256"]
    assert card["training"]["co_teachers"] == []
    assert card["split"] == teacher_card["split"]
    assert card["training_seconds"] > teacher_card["training_seconds"]  # the teacher's time counts too
    soft = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)["soft_targets"]  # kept for --resume
    assert soft.shape == (20, 10) and torch.allclose(soft.sum(1), torch.ones(20))


def test_distilling_from_two_models_learns_their_mean(make_dataset, tmp_path, capsys):
    common = ["--data-dir", str(make_dataset(4)), "--epochs", "1", *TRAIN_FLAGS]
    first = publish_teacher(common, tmp_path, "first", capsys)
    second = publish_teacher(common, tmp_path, "second", capsys, "--lr", "1e-3")
    alone = {}  # each teacher's own targets, from a run that learns from it only
    for name in ("first", "second"):
        publish_teacher(common, tmp_path, f"from-{name}", capsys, "--distill-from", str(tmp_path / name))
        alone[name] = torch.load(tmp_path / f"from-{name}-ckpt" / "last.pt", weights_only=True)["soft_targets"]

    code, out, err = run_main(train.main, [*common, "--artifact-uri", str(tmp_path / "student"), *scratch(tmp_path),
                                           "--distill-from", str(tmp_path / "first"),
                                           "--distill-from", str(tmp_path / "second")], capsys)
    assert code == 0, err
    card = json.loads((tmp_path / "student" / json.loads(out)["version"] / "model_card.json").read_text())
    assert card["training"]["teacher_version"] == first["version"]
    assert card["training"]["co_teachers"] == [{"version": second["version"],
                                                "weights_sha256": second["weights_sha256"]}]
    assert card["training_seconds"] > first["training_seconds"] + second["training_seconds"]
    ensemble = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)["soft_targets"]
    assert not torch.allclose(alone["first"], alone["second"])
    assert torch.allclose(ensemble, (alone["first"] + alone["second"]) / 2, atol=1e-6)


def test_distilling_from_a_model_of_another_split_is_refused(make_dataset, tiny_model_store, tmp_path, capsys):
    code, out, err = run_main(train.main, ["--data-dir", str(make_dataset(4)), "--epochs", "1", *TRAIN_FLAGS,
                                           *scratch(tmp_path), "--artifact-uri", str(tmp_path / "student"),
                                           "--distill-from", str(tiny_model_store)], capsys)
    assert code == 2 and out == "" and not (tmp_path / "student").exists()
    assert err.startswith("error: the teacher v") and "was trained on another split" in err, err


# -- nothing reaches the project's runs/ or models/ ---------------------------------------------------
def test_no_test_can_write_into_the_project():
    """Every folder a command writes by default is redirected (tests/integration/conftest.py)."""
    settings = Settings()
    for folder in (settings.checkpoint_dir, settings.work_dir, Path(settings.artifact_uri)):
        assert not folder.resolve().is_relative_to(PROJECT_ROOT), folder


# -- refused before any image is decoded ---------------------------------------------------------------
@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"], "--epochs 0: input should be greater than or equal to 1"),
    (["--batch-size", "0"], "--batch-size 0: input should be greater than or equal to 1"),
    (["--threads", "0"], "--threads 0: input should be greater than or equal to 1"),
    (["--distill-weight", "2"], "--distill-weight 2.0: input should be less than or equal to 1"),
    (["--lr", "0"], "--lr 0.0: input should be greater than 0"),
    (["--architecture", "resnet34"], "--architecture resnet34: unknown; use one of resnet18, "),
    (["--architecture", "resnet18-nopool-w32", "--pretrained"],
     "--pretrained: no ImageNet weights for resnet18-nopool-w32; use --architecture resnet18 or resnet18-nopool"),
])
def test_a_bad_training_flag_is_one_line_naming_it(flags, message, make_dataset, tmp_path, no_decoding, capsys):
    args = ["--data-dir", str(make_dataset(3)), "--artifact-uri", str(tmp_path / "store"), *scratch(tmp_path),
            *TRAIN_FLAGS, *flags]
    code, out, err = run_main(train.main, args, capsys)
    assert code == 2 and out == "" and err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "store").exists() and not (tmp_path / "work").exists()


def test_a_bad_training_flag_prints_no_traceback(tmp_path):
    result = run_module("train", "--data-dir", str(tmp_path / "none"), *scratch(tmp_path), "--epochs", "0",
                        timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == "error: --epochs 0: input should be greater than or equal to 1\n"


@pytest.mark.parametrize("store", ["a-file", "read-only"])
def test_an_unwritable_store_fails_before_training(store, make_dataset, tmp_path, read_only_folder, no_decoding,
                                                   capsys):
    if store == "a-file":
        (tmp_path / "store").write_text("not a folder")
        uri, expected = tmp_path / "store" / "models", f"{tmp_path / 'store'} is a file, not a folder"
    else:
        uri = read_only_folder(tmp_path / "store") / "models"
        expected = f"writing to {tmp_path / 'store'} failed (Permission denied)"
    args = ["--data-dir", str(make_dataset(3)), "--artifact-uri", str(uri), *scratch(tmp_path), *TRAIN_FLAGS]
    code, out, err = run_main(train.main, args, capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"error: cannot publish to {uri}: ") and expected in err, err


@pytest.mark.parametrize("flag", ["--checkpoint-dir", "--work-dir"])
def test_an_unwritable_run_folder_fails_before_training(flag, make_dataset, tmp_path, no_decoding, capsys):
    (tmp_path / "blocked").write_text("not a folder")
    folders = {"--checkpoint-dir": str(tmp_path / "ckpt"), "--work-dir": str(tmp_path / "work"),
               flag: str(tmp_path / "blocked" / "run")}
    args = ["--data-dir", str(make_dataset(3)), "--artifact-uri", str(tmp_path / "store"),
            *(x for pair in folders.items() for x in pair), *TRAIN_FLAGS]
    code, out, err = run_main(train.main, args, capsys)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err == f"error: {flag} {tmp_path / 'blocked' / 'run'}: {tmp_path / 'blocked'} is a file, not a folder\n"


def test_an_unwritable_store_fails_before_a_download(tmp_path, monkeypatch, capsys):
    import eurosat_service.adapters.eurosat_download as download

    monkeypatch.setattr(download, "download_eurosat", lambda *a, **k: pytest.fail("downloaded first"))
    (tmp_path / "store").write_text("not a folder")
    args = ["--data-dir", str(tmp_path / "data"), "--download", "--artifact-uri", str(tmp_path / "store" / "m"),
            *scratch(tmp_path), *TRAIN_FLAGS]
    code, out, err = run_main(train.main, args, capsys)
    assert code == 2 and err.startswith(f"error: cannot publish to {tmp_path / 'store' / 'm'}: "), err


def test_an_undecodable_image_is_named(make_dataset, tmp_path, capsys):
    data = make_dataset(3)
    image = data / "2750" / "River" / "River_2.jpg"
    image.write_bytes(image.read_bytes()[:300])  # a truncated download
    args = ["--data-dir", str(data), "--artifact-uri", str(tmp_path / "store"), *scratch(tmp_path), "--epochs", "1",
            *TRAIN_FLAGS]
    code, out, err = run_main(train.main, args, capsys)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"error: River/River_2.jpg in {data / '2750'}: image could not be decoded"), err
    assert err.endswith("; remove or replace that file\n")


def test_ctrl_c_in_the_first_epoch_offers_no_resume(make_dataset, tmp_path, monkeypatch, capsys):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(TorchTrainer, "_epoch", interrupted)
    args = ["--data-dir", str(make_dataset(3)), "--artifact-uri", str(tmp_path / "store"), *scratch(tmp_path),
            *TRAIN_FLAGS]
    code, out, err = run_main(train.main, args, capsys)
    assert code == 130 and out == ""
    assert err == ("interrupted during epoch 1; no epoch of this run had finished, so it left no checkpoint: "
                   "run again to start over\n")
    assert not (tmp_path / "ckpt" / "last.pt").exists()
