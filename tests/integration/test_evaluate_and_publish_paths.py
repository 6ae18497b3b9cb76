"""Paths the commands would fail on after minutes of work are refused first, in one error line:
evaluate's output files, a mistyped --artifact-uri or --model-uri."""

from __future__ import annotations


import pytest

from eurosat_service.adapters.torch_trainer import TorchTrainer
from eurosat_service.entrypoints import cli, evaluate, train
from tests.conftest import SHIPPED_MODEL

MISTYPED = ["s3:/qa/p", "S3://qa/p", "gs://qa-bucket/p"]


def run_main(main, args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        cli.run(lambda: main(args))
    out, err = capsys.readouterr()
    return exited.value.code, out, err


@pytest.fixture
def nothing_scored(monkeypatch):
    """Fails the test if evaluate gets as far as loading a model or scoring."""
    monkeypatch.setattr(evaluate, "build_container", lambda **kw: pytest.fail("loaded the model first"))
    monkeypatch.setattr(evaluate, "evaluate_model", lambda *a, **kw: pytest.fail("scored first"))


@pytest.mark.parametrize("flag", ["--output", "--confusion-png"])
@pytest.mark.parametrize("case", ["a-folder", "a-file-in-the-way", "read-only"])
def test_an_unwritable_evaluate_output_is_refused_before_scoring(flag, case, tmp_path, read_only_folder,
                                                                nothing_scored, capsys):
    if case == "a-folder":
        target = tmp_path / "out"
        target.mkdir()
        expected = f"error: {flag} {target} is a folder; give a file name inside it\n"
    elif case == "a-file-in-the-way":
        (tmp_path / "blocked").write_text("not a folder")
        target = tmp_path / "blocked" / "sub" / "report.json"
        expected = f"error: {flag} {target}: {tmp_path / 'blocked'} is a file, not a folder\n"
    else:
        target = read_only_folder(tmp_path / "ro") / "report.json"
        expected = f"error: {flag} {target}: writing to {tmp_path / 'ro'} failed (Permission denied)\n"
    code, out, err = run_main(evaluate.main, ["--model-uri", str(SHIPPED_MODEL), "--data-dir", str(tmp_path),
                                              flag, str(target)], capsys)
    assert (code, out, err) == (2, "", expected)


@pytest.mark.parametrize("uri", MISTYPED)
def test_evaluate_refuses_a_mistyped_model_uri(uri, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(evaluate.main, ["--model-uri", uri, "--data-dir", str(tmp_path)], capsys)
    assert code == 2 and out == "" and err.startswith(f"error: unsupported model URI {uri!r}") and err.count("\n") == 1


@pytest.mark.parametrize("uri", MISTYPED)
def test_training_refuses_a_mistyped_artifact_uri_before_training(uri, make_dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(TorchTrainer, "load_pixels", lambda self, images: pytest.fail("decoded the images"))
    data = make_dataset(1)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(train.main, ["--data-dir", str(data), "--artifact-uri", uri, "--epochs", "1",
                                           "--checkpoint-dir", str(tmp_path / "ckpt"), "--work-dir",
                                           str(tmp_path / "work"), "--no-progress"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"error: unsupported artifact URI {uri!r}; expected ") and "s3://bucket/prefix" in err
    assert not any(p.name in ("s3:", "S3:", "gs:") for p in tmp_path.iterdir())
