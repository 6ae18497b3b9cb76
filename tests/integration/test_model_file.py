"""The ``model.pt`` format on real torch: what goes in comes out, and a file that does not hold
what its card says is refused (needs torch alone, so it also runs on the CPU-only build)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from eurosat_service.adapters.model_file import FORMAT, load_model, save_model
from eurosat_service.adapters.resnet import build_resnet
from eurosat_service.domain.errors import ArtifactIntegrityError, ModelLoadError
from eurosat_service.domain.land_cover import EUROSAT_CLASSES
from tests.unit.fakes import make_card

ARCHITECTURE = "resnet18-nopool-w32"


@pytest.fixture()
def saved(tmp_path: Path) -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(0)
    network = build_resnet(ARCHITECTURE, len(EUROSAT_CLASSES)).eval()
    card = make_card(EUROSAT_CLASSES).model_copy(update={"architecture": ARCHITECTURE})
    path = tmp_path / "model.pt"
    save_model(network, card, path)
    return network, path


def test_a_saved_model_loads_back_with_the_same_weights_and_outputs(saved: tuple[torch.nn.Module, Path]) -> None:
    network, path = saved
    loaded, card = load_model(path)
    assert card.architecture == ARCHITECTURE and not loaded.training
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(loaded(x), network(x))


def test_weights_that_do_not_fit_the_cards_architecture_are_refused(saved: tuple[torch.nn.Module, Path]) -> None:
    _, path = saved
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["fc.weight"] = torch.zeros(3, 256)  # three classes' head, ten in the card
    torch.save(payload, path)
    with pytest.raises(ModelLoadError, match="unusable model: .*fc.weight"):
        load_model(path)


def test_weights_changed_after_saving_fail_the_sha256_check(saved: tuple[torch.nn.Module, Path]) -> None:
    _, path = saved
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["fc.bias"] += 1.0
    torch.save(payload, path)
    with pytest.raises(ArtifactIntegrityError, match="does not match the model card"):
        load_model(path)


def test_a_file_of_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"format": FORMAT.replace("v1", "v0"), "state_dict": {}}, path)
    with pytest.raises(ModelLoadError, match="not an eurosat-service model"):
        load_model(path)
