"""``GET /model``: the card of the model being served (version, classes, metrics, sha256)."""

from __future__ import annotations

from fastapi import APIRouter

from eurosat_service.domain.model_card import ModelCard
from eurosat_service.entrypoints.web.dependencies import Inference

router = APIRouter(tags=["model"])


@router.get("/model", response_model=ModelCard, summary="The served model's card")
async def model(inference: Inference) -> ModelCard:
    return inference.classifier.card
