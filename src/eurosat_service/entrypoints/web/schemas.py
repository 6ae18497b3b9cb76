"""Response bodies of the public API (also what /docs shows)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from eurosat_service.domain.prediction import Prediction


class PredictionOut(BaseModel):
    label: str = Field(description="the most probable land-cover class", examples=["Forest"])
    confidence: float = Field(ge=0, le=1, description="the probability of `label`")
    probabilities: dict[str, float] = Field(description="class name -> probability, for every class")
    model_version: str

    @classmethod
    def of(cls, prediction: Prediction) -> PredictionOut:
        return cls(
            label=prediction.label,
            confidence=prediction.confidence,
            probabilities=dict(prediction.probabilities),
            model_version=prediction.model_version,
        )


class BatchPredictionOut(BaseModel):
    predictions: list[PredictionOut] = Field(description="one per uploaded file, in upload order")


class StatusOut(BaseModel):
    status: Literal["ok", "ready", "not ready"]
    model_version: str | None = None


class ErrorOut(BaseModel):
    error: str = Field(description="a stable machine-readable code", examples=["invalid_image"])
    detail: str = Field(description="what was wrong, for a human")
