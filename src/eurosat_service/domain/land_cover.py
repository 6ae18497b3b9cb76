"""The ten EuroSAT land-cover classes, in the order the official archive lists them."""

from __future__ import annotations

from enum import StrEnum


class LandCoverClass(StrEnum):
    ANNUAL_CROP = "AnnualCrop"
    FOREST = "Forest"
    HERBACEOUS_VEGETATION = "HerbaceousVegetation"
    HIGHWAY = "Highway"
    INDUSTRIAL = "Industrial"
    PASTURE = "Pasture"
    PERMANENT_CROP = "PermanentCrop"
    RESIDENTIAL = "Residential"
    RIVER = "River"
    SEA_LAKE = "SeaLake"


EUROSAT_CLASSES: tuple[str, ...] = tuple(c.value for c in LandCoverClass)
