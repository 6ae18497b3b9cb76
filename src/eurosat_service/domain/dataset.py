"""Labelled images and the deterministic, stratified train/val/test split."""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

MIN_IMAGES_PER_CLASS = 3  # one each for training, validation and test


@dataclass(frozen=True, slots=True, order=True)
class LabeledImage:
    """An image known by its path relative to the dataset root (``Forest/Forest_12.jpg``)."""

    path: str
    label: str


class SplitSummary(BaseModel):
    """Enough to prove which images a model saw: the seed, the counts and a hash of each list."""

    model_config = ConfigDict(frozen=True)

    seed: int
    fractions: tuple[float, float, float]
    counts: dict[str, int]
    sha256: dict[str, str]


@dataclass(frozen=True)
class DataSplit:
    train: tuple[LabeledImage, ...]
    val: tuple[LabeledImage, ...]
    test: tuple[LabeledImage, ...]
    seed: int
    fractions: tuple[float, float, float]

    def parts(self) -> dict[str, tuple[LabeledImage, ...]]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def summary(self) -> SplitSummary:
        return SplitSummary(
            seed=self.seed,
            fractions=self.fractions,
            counts={name: len(items) for name, items in self.parts().items()},
            sha256={name: fingerprint(items) for name, items in self.parts().items()},
        )

    def listing(self) -> dict[str, list[str]]:
        return {name: [i.path for i in items] for name, items in self.parts().items()}

    def missing_classes(self) -> dict[str, list[str]]:
        """Per part, the classes it holds no image of (parts holding every class are left out):
        a class missing from val or test would be trained on but never scored."""
        labels = sorted({i.label for items in self.parts().values() for i in items})
        found = {}
        for name, items in self.parts().items():
            present = {i.label for i in items}
            if missing := [label for label in labels if label not in present]:
                found[name] = missing
        return found


def fingerprint(images: Iterable[LabeledImage]) -> str:
    """sha256 of the sorted relative paths: equal lists give equal hashes on any machine."""
    digest = hashlib.sha256()
    for path in sorted(i.path for i in images):
        digest.update(path.encode() + b"\n")
    return digest.hexdigest()


def _share(n: int, fraction: float) -> int:
    """Rounded share of ``n``, but at least one image whenever the fraction and class allow it."""
    if fraction == 0 or n < MIN_IMAGES_PER_CLASS:
        return round(n * fraction)
    return max(1, round(n * fraction))


def stratified_split(
    images: Sequence[LabeledImage],
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 42,
) -> DataSplit:
    """Split each class by the same fractions, independent of file order or numbering.

    Each class is sorted by path, then shuffled with its own ``Random(f"{seed}:{label}")``, so
    adding images of one class never moves the images of another.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    by_class: dict[str, list[LabeledImage]] = defaultdict(list)
    for image in images:
        by_class[image.label].append(image)
    train: list[LabeledImage] = []
    val: list[LabeledImage] = []
    test: list[LabeledImage] = []
    for label in sorted(by_class):
        members = sorted(by_class[label])
        random.Random(f"{seed}:{label}").shuffle(members)
        n_val, n_test = (_share(len(members), f) for f in fractions[1:])
        test += members[:n_test]
        val += members[n_test : n_test + n_val]
        train += members[n_test + n_val :]
    return DataSplit(tuple(train), tuple(val), tuple(test), seed, tuple(fractions))  # type: ignore[arg-type]
