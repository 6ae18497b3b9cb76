"""What endpoints take from the container, as ``Annotated`` aliases (short signatures).

Each is an ``async`` FastAPI dependency reading the container the app was built with
(``app.state.container``), so tests that override a provider (a fake classifier) change what
every endpoint gets. Async on purpose: FastAPI runs a sync dependency in a worker thread, a
thread hop per request for what is a dictionary lookup.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from eurosat_service.adapters.prometheus_metrics import ServiceMetrics
from eurosat_service.entrypoints.container import Container
from eurosat_service.service_layer.inference import InferenceService


def container_of(request: Request) -> Container:
    return request.app.state.container


async def _inference(request: Request) -> InferenceService:
    return container_of(request).inference()


async def _metrics(request: Request) -> ServiceMetrics:
    return container_of(request).metrics()


Inference = Annotated[InferenceService, Depends(_inference)]
Metrics = Annotated[ServiceMetrics, Depends(_metrics)]
