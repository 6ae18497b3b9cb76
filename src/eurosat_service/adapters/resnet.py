"""ResNet-18 written against plain ``torch.nn``.

Serving must run on the CPU-only torch build with no torchvision beside it, so the network is
defined here rather than imported. Module names and parameter shapes match
``torchvision.models.resnet18`` exactly (a test checks it), so torchvision's pretrained weights
load into it and a model trained here loads into torchvision.

The ``stem`` argument picks the first layers: ``"imagenet"`` is torchvision's 7x7/2 conv + max
pool; ``"nopool"`` drops the max pool, so a 64x64 tile reaches the last stage as 4x4 instead of
2x2 (4x the compute, same parameters, so pretrained weights still fit).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(
        self,
        layers: tuple[int, int, int, int] = (2, 2, 2, 2),
        num_classes: int = 10,
        stem: str = "imagenet",
        width: int = 64,
    ) -> None:
        super().__init__()
        if stem not in ("imagenet", "nopool"):
            raise ValueError(f"unknown stem {stem!r}; expected 'imagenet' or 'nopool'")
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.maxpool: nn.Module = nn.MaxPool2d(3, 2, 1) if stem == "imagenet" else nn.Identity()
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        planes = [width, width * 2, width * 4, width * 8]
        self.layer1 = self._stage(width, planes[0], layers[0], 1)
        self.layer2 = self._stage(planes[0], planes[1], layers[1], 2)
        self.layer3 = self._stage(planes[1], planes[2], layers[2], 2)
        self.layer4 = self._stage(planes[2], planes[3], layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(planes[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Zero-init the last BN of each block so every block starts as identity (Goyal et al.).
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    @staticmethod
    def _stage(in_planes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = [BasicBlock(in_planes, planes, stride)]
        layers += [BasicBlock(planes, planes) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


ARCHITECTURES = {
    "resnet18": dict(layers=(2, 2, 2, 2), stem="imagenet", width=64),
    "resnet18-nopool": dict(layers=(2, 2, 2, 2), stem="nopool", width=64),
    "resnet18-nopool-w32": dict(layers=(2, 2, 2, 2), stem="nopool", width=32),
}


def build_resnet(architecture: str, num_classes: int) -> ResNet:
    try:
        params = ARCHITECTURES[architecture]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {architecture!r}; known: {known}") from None
    return ResNet(num_classes=num_classes, **params)  # type: ignore[arg-type]


def fold_batch_norms(network: ResNet, *, inplace: bool = False) -> ResNet:
    """An inference network with each batch norm folded into the convolution before it: in
    eval mode a batch norm is a fixed per-channel affine map, so the convolution can apply it
    through its weights and a bias. Same outputs (to float rounding), one pass over each
    activation less: about a tenth faster on this CPU (docs/benchmarks.md). ``inplace`` folds
    ``network`` itself rather than a copy (serving keeps no unfolded network, and copying every
    weight twice was most of its load time)."""
    folded = (network if inplace else copy.deepcopy(network)).eval()
    folded.conv1, folded.bn1 = _fused(folded.conv1, folded.bn1), nn.Identity()
    for stage in (folded.layer1, folded.layer2, folded.layer3, folded.layer4):
        for block in stage:
            block.conv1, block.bn1 = _fused(block.conv1, block.bn1), nn.Identity()
            block.conv2, block.bn2 = _fused(block.conv2, block.bn2), nn.Identity()
            if block.downsample is not None:
                conv, bn = block.downsample
                block.downsample = _fused(conv, bn)
    return folded


def _fused(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """``conv`` given the weights and bias of ``bn`` after it (torch's ``fuse_conv_bn_eval``
    without its copy of the convolution)."""
    conv.weight, conv.bias = fuse_conv_bn_weights(
        conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
    )
    return conv
