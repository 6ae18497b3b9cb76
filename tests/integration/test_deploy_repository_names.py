"""`down --delete-repository NAME` with a name that names no repository: it must not report a
repository as gone that never was there. Real moto over HTTP."""

from __future__ import annotations

import pytest

from tests.integration.deploy_helpers import run_deploy


@pytest.mark.parametrize("name", ["Bad/Name!!", "UPPER", "a", "double//slash"])
def test_a_name_ecr_would_refuse_is_a_usage_error_before_anything_is_deleted(moto, prefix, capsys, name):
    code, out, err = run_deploy(capsys, "down", "--name-prefix", prefix, "--delete-repository", name)
    assert code == 2 and out == "" and "Traceback" not in err  # argparse's usage error: nothing touched
    assert f"{name!r} is not a valid repository name" in err


def test_a_valid_name_is_still_looked_up_and_deleted_only_if_ours(moto, prefix, capsys):
    ecr = moto.client("ecr")
    name = f"{prefix}/team.images_v-2"  # every separator ECR allows
    ecr.create_repository(repositoryName=name)  # someone else's
    code, out, _ = run_deploy(capsys, "down", "--name-prefix", prefix, "--delete-repository", name)
    assert code == 0 and f"kept: ECR repository {name}: not created by this tool" in out
    ecr.delete_repository(repositoryName=name)


def test_a_repository_that_does_not_exist_is_not_reported_as_gone(moto, prefix, capsys):
    code, out, _ = run_deploy(capsys, "down", "--name-prefix", prefix, "--delete-repository", f"{prefix}-typo")
    assert "already gone" not in out
    assert f"{prefix}-typo" in out and "us-east-1" in out and "nothing deleted" in out
    assert code == 1
