"""EuroSAT as it comes: the ``2750/<Class>/<Class>_<N>.jpg`` folder tree or the ``EuroSAT.zip``.

Counts and file numbers are whatever is on disk; only the layout is assumed.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path, PurePosixPath

from eurosat_service.domain.dataset import LabeledImage
from eurosat_service.domain.errors import DatasetError

ARCHIVE_NAME = "EuroSAT.zip"  # the official archive's name, as ``--download`` saves it
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"}
LAYOUT = "<root>/2750/<ClassName>/<image>.jpg (or a folder of class folders, or EuroSAT.zip)"


class EuroSATFolder:
    """A directory holding ``2750/`` (or the class folders themselves)."""

    def __init__(self, root: Path | str) -> None:
        root = Path(root)
        if not root.exists():
            raise DatasetError(f"data directory {root} does not exist; expected {LAYOUT}")
        if not root.is_dir():
            raise DatasetError(f"{root} is not a directory; expected {LAYOUT}")
        self.root = root / "2750" if (root / "2750").is_dir() else root
        self._images = self._scan()

    def _scan(self) -> list[LabeledImage]:
        images = [
            LabeledImage(f"{cls.name}/{f.name}", cls.name)
            for cls in sorted(p for p in self.root.iterdir() if p.is_dir())
            for f in sorted(cls.iterdir())
            if f.suffix.lower() in IMAGE_SUFFIXES
        ]
        if not images:
            raise DatasetError(f"no class folders with images under {self.root}; expected {LAYOUT}")
        return images

    def __str__(self) -> str:
        return str(self.root)

    def list_images(self) -> list[LabeledImage]:
        return list(self._images)

    def read(self, image: LabeledImage) -> bytes:
        return (self.root / image.path).read_bytes()


class EuroSATZip:
    """The official archive, read in place (members ``2750/<Class>/<file>``)."""

    def __init__(self, archive: Path | str) -> None:
        self.archive = Path(archive)
        try:
            self._zip = zipfile.ZipFile(self.archive)
            bad = self._zip.testzip()
        except FileNotFoundError:
            raise DatasetError(f"archive {self.archive} does not exist") from None
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise DatasetError(f"{self.archive} is not a readable zip archive ({exc}); re-download it") from None
        except zlib.error as exc:  # a damaged deflated member fails before its CRC is checked
            raise DatasetError(f"{self.archive} is corrupt ({exc}); re-download it") from None
        if bad is not None:
            raise DatasetError(f"{self.archive} is corrupt (member {bad} fails its CRC); re-download it")
        self._members: dict[LabeledImage, str] = {}
        for name in self._zip.namelist():
            parts = PurePosixPath(name).parts
            if len(parts) >= 2 and PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES:
                label, file = parts[-2], parts[-1]
                self._members[LabeledImage(f"{label}/{file}", label)] = name
        if not self._members:
            raise DatasetError(f"{self.archive} holds no images in class folders; expected {LAYOUT}")

    def __str__(self) -> str:
        return str(self.archive)

    def list_images(self) -> list[LabeledImage]:
        return sorted(self._members)

    def read(self, image: LabeledImage) -> bytes:
        return self._zip.read(self._members[image])


def open_dataset(location: Path | str) -> EuroSATFolder | EuroSATZip:
    """A folder, an archive, or a folder holding only the archive (where ``--download`` put it)."""
    path = Path(location)
    if path.suffix.lower() == ".zip" or path.is_file():
        return EuroSATZip(path)
    archive = path / ARCHIVE_NAME
    if archive.is_file() and not any(p.is_dir() for p in path.iterdir()):
        return EuroSATZip(archive)
    return EuroSATFolder(path)
