"""The image `deploy image` pushed last, so `deploy up` can run it without ``--image-uri``.

A small JSON file, ``~/.cache/eurosat-service/last-image.json``: ``{"image_uri": ...}``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path


def last_image_file() -> Path:
    return Path.home() / ".cache" / "eurosat-service" / "last-image.json"


def record_last_image(image_uri: str, path: Path | None = None) -> Path:
    """Written atomically by the `image` command after a successful push."""
    path = path or last_image_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps({"image_uri": image_uri,
                               "pushed_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}) + "\n")
    os.replace(tmp, path)
    return path


def read_last_image(path: Path | None = None) -> str | None:
    try:
        return json.loads((path or last_image_file()).read_text()).get("image_uri") or None
    except (OSError, ValueError, AttributeError):
        return None
