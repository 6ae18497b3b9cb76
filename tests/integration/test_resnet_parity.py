"""Our ResNet-18 is torchvision's, module for module: same state-dict keys and shapes, and the
same outputs from the same weights (so pretrained weights load, and our models load there)."""

from __future__ import annotations

import pytest
import torch

from eurosat_service.adapters.resnet import build_resnet, fold_batch_norms

models = pytest.importorskip("torchvision.models", reason="torchvision is a training-only dependency")


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_same_keys_and_shapes_as_torchvision_resnet18():
    ours = build_resnet("resnet18", 10).state_dict()
    theirs = models.resnet18(num_classes=10).state_dict()
    assert list(ours) == list(theirs)
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


@pytest.mark.parametrize("architecture", ["resnet18", "resnet18-nopool"])
def test_torchvision_weights_load_into_every_full_width_variant(architecture):
    theirs = models.resnet18(num_classes=10).state_dict()
    build_resnet(architecture, 10).load_state_dict(theirs, strict=True)


def test_same_outputs_from_the_same_weights():
    torch.manual_seed(0)
    theirs = models.resnet18(num_classes=10).eval()
    for module in theirs.modules():  # non-trivial batch-norm statistics, so they matter
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
    ours = build_resnet("resnet18", 10).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(ours(x), theirs(x), atol=1e-5)
    back = models.resnet18(num_classes=10).eval()
    back.load_state_dict(ours.state_dict(), strict=True)
    with torch.inference_mode():
        assert torch.equal(back(x), theirs(x))


def test_folding_the_batch_norms_keeps_the_outputs():
    """The served network has its batch norms folded into the convolutions (adapters/resnet.py)."""
    torch.manual_seed(0)
    network = build_resnet("resnet18-nopool-w32", 10).train()
    with torch.no_grad():
        for module in network.modules():  # non-trivial statistics and scales, as after training
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
        network(torch.randn(64, 3, 64, 64))  # updates the running mean and variance
    network.eval()
    folded = fold_batch_norms(network)
    x = torch.randn(8, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(torch.softmax(folded(x), 1), torch.softmax(network(x), 1), atol=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in network.modules()), "the original is left as it was"
    with torch.inference_mode():
        expected = folded(x)
    in_place = fold_batch_norms(network, inplace=True)  # what serving does: no copy kept
    assert in_place is network and not any(isinstance(m, torch.nn.BatchNorm2d) for m in network.modules())
    with torch.inference_mode():
        assert torch.equal(in_place(x), expected)
