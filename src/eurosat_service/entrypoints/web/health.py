"""``GET /healthz`` (the process answers) and ``GET /readyz`` (the model is loaded and warm)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from eurosat_service.entrypoints.web.dependencies import Inference
from eurosat_service.entrypoints.web.schemas import StatusOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=StatusOut, summary="Liveness")
async def healthz() -> StatusOut:
    return StatusOut(status="ok")


@router.get("/readyz", response_model=StatusOut, summary="Readiness",
            responses={503: {"model": StatusOut, "description": "starting up or shutting down"}})
async def readyz(inference: Inference) -> StatusOut | JSONResponse:
    if not inference.ready:
        return JSONResponse(StatusOut(status="not ready").model_dump(), status_code=503)
    return StatusOut(status="ready", model_version=inference.classifier.card.version)
