"""``--download``: fetch, verify the checksum before use, skip a verified copy, refuse a bad one.

Served by a local ``http.server`` on loopback; nothing leaves the machine."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from eurosat_service.adapters.eurosat_download import download_eurosat
from eurosat_service.adapters.eurosat_files import EuroSATFolder, EuroSATZip, open_dataset
from eurosat_service.domain.errors import DatasetError


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):
        CountingHandler.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def served(make_dataset, tmp_path) -> Iterator[tuple[str, str]]:
    """A generated EuroSAT.zip served over HTTP on loopback: its URL and MD5."""
    site = tmp_path / "site"
    site.mkdir()
    archive = Path(shutil.make_archive(str(site / "EuroSAT"), "zip", root_dir=make_dataset(1)))
    CountingHandler.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(CountingHandler, directory=site))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/EuroSAT.zip", hashlib.md5(archive.read_bytes()).hexdigest()
    finally:
        server.shutdown()
        server.server_close()


def test_downloads_verifies_and_then_reuses_the_archive(served, tmp_path):
    url, md5 = served
    archive = download_eurosat(tmp_path / "data", url=url, md5=md5, show_progress=False)
    assert archive == tmp_path / "data" / "EuroSAT.zip" and not list(archive.parent.glob("*.part"))
    assert len(EuroSATZip(archive).list_images()) == 10
    assert download_eurosat(tmp_path / "data", url=url, md5=md5, show_progress=False) == archive
    assert CountingHandler.requests == ["/EuroSAT.zip"]  # the verified copy was not fetched again


def test_a_checksum_mismatch_is_refused_and_removed(served, tmp_path):
    url, _ = served
    with pytest.raises(DatasetError, match="has MD5 .* expected 0{32}; the file was removed"):
        download_eurosat(tmp_path / "data", url=url, md5="0" * 32, show_progress=False)
    assert list((tmp_path / "data").iterdir()) == []


def test_a_damaged_local_copy_is_downloaded_again(served, tmp_path):
    url, md5 = served
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "EuroSAT.zip").write_bytes(b"truncated")
    archive = download_eurosat(tmp_path / "data", url=url, md5=md5, show_progress=False)
    assert hashlib.md5(archive.read_bytes()).hexdigest() == md5 and len(CountingHandler.requests) == 1


def test_an_unreachable_source_is_a_clear_error(served, tmp_path):
    url, md5 = served
    with pytest.raises(DatasetError, match="could not download .*HTTP Error 404.*download it by hand"):
        download_eurosat(tmp_path / "data", url=url.replace("EuroSAT.zip", "missing.zip"), md5=md5,
                         show_progress=False)
    assert list((tmp_path / "data").iterdir()) == []


def test_a_data_dir_naming_the_zip_is_downloaded_to_and_reused(served, tmp_path):
    url, md5 = served
    target = tmp_path / "data" / "EuroSAT.zip"
    assert download_eurosat(target, url=url, md5=md5, show_progress=False) == target
    assert download_eurosat(target, url=url, md5=md5, show_progress=False) == target
    assert CountingHandler.requests == ["/EuroSAT.zip"] and sorted(target.parent.iterdir()) == [target]


def test_a_data_dir_that_cannot_be_a_folder_is_a_clear_error(served, tmp_path):
    url, md5 = served
    (tmp_path / "data").write_text("a file")
    with pytest.raises(DatasetError, match=f"cannot create the folder {tmp_path / 'data'} for EuroSAT.zip: "
                                           ".*; choose another --data-dir"):
        download_eurosat(tmp_path / "data", url=url, md5=md5, show_progress=False)
    assert CountingHandler.requests == []


def test_the_folder_a_download_went_to_opens_as_the_dataset(served, tmp_path):
    url, md5 = served
    download_eurosat(tmp_path / "data", url=url, md5=md5, show_progress=False)
    dataset = open_dataset(tmp_path / "data")
    assert isinstance(dataset, EuroSATZip) and len(dataset.list_images()) == 10
    (tmp_path / "data" / "2750" / "Forest").mkdir(parents=True)  # extracted beside it: the folder wins
    (tmp_path / "data" / "2750" / "Forest" / "Forest_1.jpg").write_bytes(b"")
    assert isinstance(open_dataset(tmp_path / "data"), EuroSATFolder)
