"""``GET /metrics``: Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Response

from eurosat_service.entrypoints.web.dependencies import Metrics

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response, summary="Prometheus metrics",
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition"}})
async def metrics(registry: Metrics) -> Response:
    return Response(registry.render(), media_type=registry.content_type)
