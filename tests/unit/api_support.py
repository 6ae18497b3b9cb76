"""Builds the API over a container whose classifier is a fake (shared by tests/unit/test_api_*)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dependency_injector import providers
from fastapi.testclient import TestClient

from eurosat_service.domain.land_cover import EUROSAT_CLASSES
from eurosat_service.entrypoints.api import create_app
from eurosat_service.entrypoints.container import Container, build_container
from tests.unit.fakes import FakeClassifier, make_card

CARD = make_card(EUROSAT_CLASSES, version="v-test")


def fake_classifier(**kwargs: object) -> FakeClassifier:
    return FakeClassifier(CARD, answers={b"forest-tile": "Forest", b"river-tile": "River"}, **kwargs)


def fake_container(fake: FakeClassifier, **settings: object) -> Container:
    container = build_container(**{"max_wait_ms": 1.0, **settings})
    container.classifier.override(providers.Object(fake))
    return container


@contextmanager
def api_client(fake: FakeClassifier | None = None, **settings: object) -> Iterator[TestClient]:
    """A client of a started app (lifespan run: warm-up done, worker running)."""
    container = fake_container(fake or fake_classifier(), **settings)
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield client


def image(name: str, data: bytes) -> tuple[str, tuple[str, bytes, str]]:
    return name, (f"{name}.jpg", data, "image/jpeg")
