"""Test-time augmentation end to end: the API started with ``EUROSAT_VIEWS`` answers exactly what
the training-side evaluation computes with ``--views``, and the views do change the answer."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import torch

from eurosat_service.adapters.augmentation import average_views, dihedral_view, stack_views
from eurosat_service.adapters.resnet import build_resnet
from tests.conftest import FIXTURE_EUROSAT
from tests.integration.api_process import running_api

pytestmark = pytest.mark.timeout(600)


def test_eight_views_give_the_same_answer_for_every_flip_or_rotation_of_a_tile():
    torch.manual_seed(0)
    network = build_resnet("resnet18-nopool-w32", 10).eval()
    tiles = torch.randn(3, 3, 64, 64)

    def averaged(batch: torch.Tensor, views: int) -> torch.Tensor:
        with torch.inference_mode():
            return average_views(torch.softmax(network(stack_views(batch, views)), dim=1), views)

    reference = averaged(tiles, 8)
    assert reference.shape == (3, 10) and torch.allclose(reference.sum(1), torch.ones(3))
    for t in range(1, 8):
        assert torch.allclose(averaged(dihedral_view(tiles, t).contiguous(), 8), reference, atol=1e-5)
    assert not torch.allclose(averaged(tiles, 1), reference, atol=1e-4)  # not just the identity view
    assert stack_views(tiles, 1) is tiles


@pytest.mark.parametrize("views", [2, 8])
def test_the_api_with_views_equals_the_training_side_evaluation_with_views(
        served_model: Path, tmp_path: Path, views: int) -> None:
    from eurosat_service.adapters.artifact_uri import resolve_model_file
    from eurosat_service.adapters.eurosat_files import EuroSATFolder
    from eurosat_service.adapters.torch_trainer import TorchTrainer

    source = EuroSATFolder(FIXTURE_EUROSAT)
    images = source.list_images()
    trainer = TorchTrainer(source, show_progress=False)
    model = trainer.load(resolve_model_file(str(served_model), tmp_path, s3_client=lambda: None))
    expected = trainer.predict_probabilities(model, images, views=views)
    single = trainer.predict_probabilities(model, images)

    files = [("files", (i.path, source.read(i), "image/jpeg")) for i in images]
    with running_api(served_model, tmp_path / "api", views=views) as api, \
            httpx.Client(base_url=api.url, timeout=120) as client:
        response = client.post("/predict/batch", files=files)
        metrics = client.get("/metrics").text
    assert response.status_code == 200, response.text
    assert f'views="{views}"' in next(line for line in metrics.splitlines() if line.startswith("eurosat_model_info{"))
    served = [[p["probabilities"][name] for name in model.class_names] for p in response.json()["predictions"]]
    assert len(served) == len(images) == 30
    worst = max(abs(a - b) for row, ref in zip(served, expected) for a, b in zip(row, ref))
    assert worst < 1e-5, f"largest probability difference {worst:.2e}"
    changed = max(abs(a - b) for row, ref in zip(served, single) for a, b in zip(row, ref))
    assert changed > 1e-3, "averaging over views left every probability as the single view's"
