"""Batch augmentation for overhead imagery, on tensors (no per-image PIL work): random views for
training, and the fixed views averaged at test time (``domain/views``).

Overhead tiles have no "up": all eight flips/rotations (the dihedral group) are equally valid
views. Small shifts and mild brightness/contrast changes mimic co-registration offsets and
illumination differences between acquisitions. Needs torch alone: serving uses it too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from eurosat_service.domain.views import view_transforms


def dihedral_view(batch: torch.Tensor, t: int) -> torch.Tensor:
    """Flip/rotation ``t`` (0-7) of an ``(N, C, H, W)`` batch: ``t % 4`` quarter turns, then a
    horizontal flip when ``t >= 4``; 0 is the identity."""
    view = torch.rot90(batch, t % 4, dims=(2, 3))
    return view.flip(3) if t >= 4 else view


def stack_views(batch: torch.Tensor, views: int) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(views x N, C, H, W)``, view-major, ready for one forward pass (one
    large batch runs faster than ``views`` small ones); ``batch`` itself when ``views`` is 1."""
    transforms = view_transforms(views)
    return batch if views == 1 else torch.cat([dihedral_view(batch, t) for t in transforms])


def average_views(probabilities: torch.Tensor, views: int) -> torch.Tensor:
    """``(views x N, classes)`` from a forward pass over ``stack_views`` -> ``(N, classes)``."""
    return probabilities if views == 1 else probabilities.unflatten(0, (views, -1)).mean(dim=0)


def augment(batch: torch.Tensor, generator: torch.Generator, shift: int = 4, jitter: float = 0.1) -> torch.Tensor:
    """uint8 ``(N, 3, H, W)`` -> augmented float32 on the same 0-255 scale."""
    x = batch.to(torch.float32)
    n, _, h, w = x.shape
    transform = torch.randint(0, 8, (n,), generator=generator)
    out = torch.empty_like(x)
    for t in range(8):
        idx = (transform == t).nonzero(as_tuple=True)[0]
        if idx.numel():
            out[idx] = dihedral_view(x[idx], t)
    if shift:
        padded = F.pad(out, (shift, shift, shift, shift), mode="reflect")
        dx = torch.randint(0, 2 * shift + 1, (n,), generator=generator).tolist()
        dy = torch.randint(0, 2 * shift + 1, (n,), generator=generator).tolist()
        out = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    if jitter:
        brightness = 1 + (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * jitter
        contrast = 1 + (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * jitter
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        out = ((out - mean) * contrast + mean) * brightness
        out = out.clamp_(0, 255)
    return out
