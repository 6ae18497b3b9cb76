"""The commands the deploy job prints for the user's next step, and the small flag parsers:
a printed command must act on the same deployment, a wait must end, a time must be one
CloudWatch takes."""

from __future__ import annotations

import argparse
import shlex

import pytest

from eurosat_service.domain.errors import InvalidDeploymentConfig
from eurosat_service.entrypoints.deploy import again, build_parser
from eurosat_service.entrypoints.deploy_args import parse_since, seconds


def test_a_printed_command_carries_the_flags_that_chose_the_deployment() -> None:
    args = build_parser().parse_args(["up", "--name-prefix", "demo", "--region", "eu-west-1", "--profile", "ops team",
                                      "--endpoint-url", "http://127.0.0.1:5000", "--cpu", "512"])
    command = again(args, "down")
    assert shlex.split(command) == ["python", "-m", "eurosat_service.entrypoints.deploy", "down",
                                    "--name-prefix", "demo", "--region", "eu-west-1", "--profile", "ops team",
                                    "--endpoint-url", "http://127.0.0.1:5000"]  # not --cpu: `down` has none
    assert build_parser().parse_args(shlex.split(command)[3:]).deploy_name_prefix == "demo"


def test_without_flags_a_printed_command_is_bare_and_the_environment_still_applies() -> None:
    assert again(build_parser().parse_args(["up"]), "status") == "python -m eurosat_service.entrypoints.deploy status"


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "0", "-5", "soon"])
def test_a_wait_must_be_a_positive_finite_number_of_seconds(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        seconds(text)
    with pytest.raises(SystemExit) as refused:  # argparse: usage and exit 2, no traceback
        build_parser().parse_args(["smoke", "--wait", text])
    assert refused.value.code == 2


def test_since_before_1970_is_refused_here_not_by_cloudwatch() -> None:
    for text in ("1969-12-31", "99999999d"):
        with pytest.raises(InvalidDeploymentConfig, match="before 1970"):
            parse_since(text, now=1_700_000_000.0)
    assert parse_since("1970-01-01T00:00:00Z") == 0
    assert seconds("2.5") == 2.5


def test_image_takes_the_name_prefix_flag_of_every_other_command() -> None:
    for argv in (["image", "--name-prefix", "demo"], ["image", "--prefix", "demo"]):  # --prefix: as before
        assert build_parser().parse_args(argv).name_prefix == "demo"
