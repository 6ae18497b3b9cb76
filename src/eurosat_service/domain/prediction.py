"""What the classifier says about one image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True, slots=True)
class Prediction:
    label: str
    confidence: float
    probabilities: Mapping[str, float]
    model_version: str

    @classmethod
    def from_probabilities(
        cls, class_names: Sequence[str], probabilities: Sequence[float], model_version: str
    ) -> Prediction:
        if len(class_names) != len(probabilities):
            raise ValueError("one probability per class is required")
        best = max(range(len(probabilities)), key=probabilities.__getitem__)
        return cls(
            label=class_names[best],
            confidence=float(probabilities[best]),
            probabilities={n: float(p) for n, p in zip(class_names, probabilities)},
            model_version=model_version,
        )
