"""Predictions from probabilities, and the order of class names a model is trained with."""

from __future__ import annotations

import pytest

from eurosat_service.domain.land_cover import EUROSAT_CLASSES, LandCoverClass
from eurosat_service.domain.prediction import Prediction
from eurosat_service.service_layer.training import class_names_of


def test_prediction_takes_the_most_probable_class():
    p = Prediction.from_probabilities(("Forest", "River", "SeaLake"), [0.2, 0.7, 0.1], "v3")
    assert (p.label, p.confidence, p.model_version) == ("River", pytest.approx(0.7), "v3")
    assert p.probabilities == {"Forest": 0.2, "River": 0.7, "SeaLake": 0.1}


def test_prediction_needs_one_probability_per_class():
    with pytest.raises(ValueError, match="one probability per class"):
        Prediction.from_probabilities(("Forest", "River"), [1.0], "v1")


def test_eurosat_classes_in_the_official_order():
    assert EUROSAT_CLASSES == (
        "AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial",
        "Pasture", "PermanentCrop", "Residential", "River", "SeaLake",
    )
    assert LandCoverClass("SeaLake") is LandCoverClass.SEA_LAKE


def test_eurosat_labels_keep_the_official_order_and_others_are_alphabetical():
    assert class_names_of({"SeaLake", "AnnualCrop", "River"}) == ("AnnualCrop", "River", "SeaLake")
    assert class_names_of({"b", "a", "Forest"}) == ("Forest", "a", "b")
