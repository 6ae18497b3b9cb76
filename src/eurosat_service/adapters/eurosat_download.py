"""Fetches the official EuroSAT RGB archive, verified by its checksum before anything reads it.

The URL and MD5 are torchvision's (``torchvision.datasets.EuroSAT``): the archive as published,
pinned to one revision, so the checksum cannot drift. The archive is read in place by
``EuroSATZip``; nothing is extracted.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from eurosat_service.adapters.eurosat_files import ARCHIVE_NAME
from eurosat_service.domain.errors import DatasetError

log = logging.getLogger(__name__)

EUROSAT_URL = (
    "https://huggingface.co/datasets/torchgeo/eurosat/resolve/"
    "c877bcd43f099cd0196738f714544e355477f3fd/EuroSAT.zip"
)
EUROSAT_MD5 = "c8fa014336c82ac7804f0398fcb19387"
CHUNK = 1 << 20


def download_eurosat(
    data_dir: Path | str,
    url: str = EUROSAT_URL,
    md5: str = EUROSAT_MD5,
    show_progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """``data_dir/EuroSAT.zip`` (or ``data_dir`` itself when it names a ``.zip``), downloaded
    unless a copy with the right checksum is there."""
    data_dir = Path(data_dir)
    archive = data_dir if data_dir.suffix.lower() == ".zip" else data_dir / ARCHIVE_NAME
    if archive.is_file():
        if file_md5(archive) == md5:
            log.info("using %s (checksum verified)", archive)
            return archive
        log.warning("%s fails its checksum; downloading it again", archive)
    try:
        archive.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission
        raise DatasetError(f"cannot create the folder {archive.parent} for {archive.name}: "
                           f"{exc.strerror or exc}; choose another --data-dir") from None
    part = archive.with_name(archive.name + ".part")
    try:
        _fetch(url, part, show_progress, timeout)
        actual = file_md5(part)
        if actual != md5:
            raise DatasetError(f"download from {url} has MD5 {actual}, expected {md5}; "
                               "the file was removed (a truncated or altered download): try again")
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, archive)
    return archive


def _fetch(url: str, target: Path, show_progress: bool, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "eurosat-service"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(target, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, desc=ARCHIVE_NAME, unit="B", unit_scale=True, unit_divisor=1024,
                      disable=not show_progress) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, truncated reads, disk full
        reason = exc if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", exc)
        raise DatasetError(f"could not download {url}: {reason}; download it by hand into "
                           f"{target.with_suffix('')} and run without --download") from None


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # the published checksum is an MD5
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
