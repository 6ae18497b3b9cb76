"""The git revision of a checkout, and whether the files that go into the image differ from it."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from eurosat_service.domain.errors import BuildError


def _git(directory: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise BuildError("git is not installed: pass --revision") from None
    if done.returncode != 0:
        raise BuildError(f"{directory} is not a git checkout with a commit ({done.stderr.strip()}): pass --revision")
    return done.stdout


def describe_checkout(directory: Path, paths: Sequence[str] = ()) -> tuple[str, bool]:
    """(short revision of HEAD, dirty): dirty when any of ``paths`` (all, if none) has uncommitted
    or untracked changes, since those would be in the image but not in the revision."""
    revision = _git(directory, "rev-parse", "--short=12", "HEAD").strip()
    status = _git(directory, "status", "--porcelain", "--untracked-files=all", "--", *paths)
    return revision, bool(status.strip())
