"""The teacher's targets for self-distillation: eight-view averages, the same for every view."""

from __future__ import annotations

import torch

from eurosat_service.adapters.augmentation import dihedral_view
from eurosat_service.adapters.preprocessing import normalize
from eurosat_service.adapters.resnet import build_resnet
from eurosat_service.adapters.torch_trainer import TorchTrainer


def test_dihedral_views_are_the_eight_distinct_flips_and_rotations():
    tile = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    views = [dihedral_view(tile, t) for t in range(8)]
    assert len(views) == 8 and torch.equal(views[0], tile)
    assert len({tuple(v.flatten().tolist()) for v in views}) == 8


def test_teacher_targets_do_not_change_when_the_image_is_flipped_or_rotated():
    torch.manual_seed(0)
    network = build_resnet("resnet18-nopool-w32", 10).eval()
    pixels = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8)
    trainer = TorchTrainer(source=None, show_progress=False)
    reference = trainer.dihedral_probabilities(network, pixels)
    assert torch.allclose(reference.sum(1), torch.ones(3))
    for view in (dihedral_view(pixels, t) for t in range(1, 8)):
        assert torch.allclose(trainer.dihedral_probabilities(network, view.contiguous()), reference, atol=1e-5)
    with torch.no_grad():
        single = torch.softmax(network(normalize(pixels, trainer.normalization)), dim=1)
    assert not torch.allclose(single, reference, atol=1e-5)  # the average is not just the identity view
