"""The deterministic, stratified train/val/test split."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from eurosat_service.domain.dataset import LabeledImage, fingerprint, stratified_split


def images(counts: dict[str, int]) -> list[LabeledImage]:
    return [LabeledImage(f"{c}/{c}_{n}.jpg", c) for c, k in counts.items() for n in range(1, k + 1)]


COUNTS = {"Forest": 100, "River": 50, "SeaLake": 20}


def test_same_seed_same_split_other_seed_other_split():
    a, b = stratified_split(images(COUNTS), seed=7), stratified_split(images(COUNTS), seed=7)
    assert a.parts() == b.parts()
    assert stratified_split(images(COUNTS), seed=8).test != a.test


def test_parts_are_disjoint_and_cover_everything():
    split = stratified_split(images(COUNTS))
    train, val, test = (set(p) for p in (split.train, split.val, split.test))
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(images(COUNTS))


def test_every_class_is_split_by_the_same_fractions():
    split = stratified_split(images(COUNTS), fractions=(0.8, 0.1, 0.1))
    for part, share in ((split.train, 0.8), (split.val, 0.1), (split.test, 0.1)):
        per_class = Counter(i.label for i in part)
        assert per_class == {c: round(n * share) for c, n in COUNTS.items()}


def test_independent_of_input_order():
    shuffled = images(COUNTS)
    random.Random(3).shuffle(shuffled)
    assert stratified_split(shuffled).parts() == stratified_split(images(COUNTS)).parts()


def test_adding_images_of_one_class_leaves_the_others_in_place():
    before = stratified_split(images(COUNTS))
    after = stratified_split(images({**COUNTS, "River": 80}))
    assert [i for i in after.test if i.label != "River"] == [i for i in before.test if i.label != "River"]


@pytest.mark.parametrize("n, expected", [(1, (1, 0, 0)), (2, (2, 0, 0)), (3, (1, 1, 1)), (5, (3, 1, 1))])
def test_tiny_classes(n, expected):
    split = stratified_split(images({"Forest": n}))
    assert (len(split.train), len(split.val), len(split.test)) == expected


def test_summary_records_seed_counts_and_order_free_hashes():
    split = stratified_split(images(COUNTS), seed=5)
    summary = split.summary()
    assert summary.seed == 5 and summary.counts == {"train": 136, "val": 17, "test": 17}
    assert summary.sha256["test"] == fingerprint(reversed(split.test))
    assert split.listing()["test"] == [i.path for i in split.test]


@pytest.mark.parametrize("fractions", [(0.8, 0.1), (0.9, 0.2, 0.1), (1.1, -0.1, 0.0)])
def test_bad_fractions_are_refused(fractions):
    with pytest.raises(ValueError, match="fractions"):
        stratified_split(images(COUNTS), fractions=fractions)


def test_missing_classes_names_what_each_part_lacks():
    split = stratified_split(images({"Forest": 10, "River": 2, "SeaLake": 3}))
    assert split.missing_classes() == {"val": ["River"], "test": ["River"]}
    assert stratified_split(images(COUNTS)).missing_classes() == {}
