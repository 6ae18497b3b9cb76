"""Metrics from a confusion matrix, checked against a hand-computed example."""

from __future__ import annotations

import pytest

from eurosat_service.domain.evaluation import EvaluationReport

NAMES = ("Forest", "River", "SeaLake")
# true:      F F F R R S      matrix (rows true, columns predicted):  F [2 1 0]
# predicted: F F R R S S                                            R [0 1 1]
#                                                                    S [0 0 1]
TRUE = [0, 0, 0, 1, 1, 2]
PREDICTED = [0, 0, 1, 1, 2, 2]


def test_hand_computed_example():
    report = EvaluationReport.from_labels(NAMES, TRUE, PREDICTED, model_version="v1", split="test")
    assert report.confusion_matrix == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert report.accuracy == pytest.approx(4 / 6)
    forest, river, sea = (report.per_class[n] for n in NAMES)
    assert (forest.precision, forest.recall, forest.f1, forest.support) == pytest.approx((1.0, 2 / 3, 0.8, 3))
    assert (river.precision, river.recall, river.f1, river.support) == pytest.approx((0.5, 0.5, 0.5, 2))
    assert (sea.precision, sea.recall, sea.f1, sea.support) == pytest.approx((0.5, 1.0, 2 / 3, 1))
    assert report.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert (report.num_images, report.model_version, report.split) == (6, "v1", "test")


def test_classes_without_images_are_reported_but_left_out_of_macro_f1():
    report = EvaluationReport.from_labels(NAMES, [0, 0, 1], [0, 2, 1])
    assert report.per_class["SeaLake"].support == 0 and report.per_class["SeaLake"].f1 == 0.0
    assert report.macro_f1 == pytest.approx((2 / 3 + 1.0) / 2)


def test_perfect_predictions():
    report = EvaluationReport.from_labels(NAMES, [0, 1, 2], [0, 1, 2])
    assert report.accuracy == report.macro_f1 == 1.0


def test_report_round_trips_through_json():
    report = EvaluationReport.from_labels(NAMES, TRUE, PREDICTED)
    assert EvaluationReport.model_validate_json(report.model_dump_json()) == report


@pytest.mark.parametrize("true, predicted", [([], []), ([0, 1], [0])])
def test_empty_or_mismatched_labels_are_refused(true, predicted):
    with pytest.raises(ValueError):
        EvaluationReport.from_labels(NAMES, true, predicted)
