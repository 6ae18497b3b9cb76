"""An AWS profile that signs in with IAM Identity Center (SSO) but has no usable cached token, as
after a fresh HOME or when the login lapsed: one error line naming `aws sso login --profile ...`.
Offline: botocore fails while loading the cached token, before any request is sent."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

START_URL = "https://example.awsapps.com/start"
CONFIG = f"""\
[profile sso-legacy]
sso_start_url = {START_URL}
sso_region = us-east-1
sso_account_id = 123456789012
sso_role_name = Deployer
region = us-east-1

[profile sso-session]
sso_session = corp
sso_account_id = 123456789012
sso_role_name = Deployer
region = us-east-1

[sso-session corp]
sso_start_url = {START_URL}
sso_region = us-east-1
"""


@pytest.fixture
def sso_env(tmp_path, monkeypatch):
    """~/.aws/config with two SSO profiles, a HOME with an empty token cache, no other credentials."""
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "aws-config").write_text(CONFIG)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
                 "AWS_DEFAULT_REGION", "EUROSAT_AWS_PROFILE", "EUROSAT_AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("EUROSAT_AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # never reached: fails before sending
    return home


def cache_expired_tokens(home):
    """What `aws sso login` leaves behind, an hour past its expiry (and no refresh token)."""
    cache = home / ".aws" / "sso" / "cache"
    cache.mkdir(parents=True)
    expired = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for key in (START_URL, "corp"):  # a legacy profile's cache key is its start URL, else the session's name
        (cache / f"{hashlib.sha1(key.encode()).hexdigest()}.json").write_text(json.dumps(
            {"startUrl": START_URL, "region": "us-east-1", "accessToken": "stale", "expiresAt": expired}))


def run(capsys, *argv):
    from eurosat_service.entrypoints import cli, deploy

    with pytest.raises(SystemExit) as exited:
        cli.run(lambda: deploy.main(list(argv)))
    out, err = capsys.readouterr()
    return exited.value.code, out, err


@pytest.mark.parametrize("expired", [False, True], ids=["never-logged-in", "login-expired"])
@pytest.mark.parametrize("profile", ["sso-legacy", "sso-session"])
def test_an_sso_profile_without_a_valid_login_is_one_line_naming_the_login(sso_env, capsys, profile, expired):
    if expired:
        cache_expired_tokens(sso_env)
    for command in (["status"], ["down", "--name-prefix", "demo"]):
        code, out, err = run(capsys, *command, "--profile", profile)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, (command, err)
        assert lines[0].startswith(f"error: the AWS SSO login of profile {profile} is missing or expired")
        assert lines[0].endswith(f"run `aws sso login --profile {profile}` and retry")
        assert "deleted" not in out


def test_the_profile_from_aws_profile_is_named_too(sso_env, capsys, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "sso-session")
    code, _, err = run(capsys, "status")
    assert code == 2 and err.endswith("run `aws sso login --profile sso-session` and retry\n")


def test_the_command_prints_nothing_but_the_error_line(sso_env):
    result = subprocess.run(
        [sys.executable, "-m", "eurosat_service.entrypoints.deploy", "status", "--profile", "sso-legacy"],
        capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: the AWS SSO login of profile sso-legacy is missing or expired (Error loading SSO Token: Token for "
        f"{START_URL} does not exist): run `aws sso login --profile sso-legacy` and retry"]
