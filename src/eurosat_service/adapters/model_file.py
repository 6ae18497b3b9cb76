"""The ``model.pt`` format: a state dict plus the model card as JSON, and nothing executable.

``torch.load(weights_only=True)`` refuses anything but tensors and plain containers, so a model
file cannot run code on load. The card records the sha256 of the weights, re-checked on load.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from eurosat_service.adapters.resnet import ResNet, build_resnet
from eurosat_service.domain.errors import ArtifactIntegrityError, ModelLoadError
from eurosat_service.domain.model_card import ModelCard

FORMAT = "eurosat-service/model/v1"


def weights_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and raw bytes, in name order (no numpy needed)."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        if tensor.numel():
            digest.update(ctypes.string_at(tensor.data_ptr(), tensor.numel() * tensor.element_size()))
    return digest.hexdigest()


def save_model(network: torch.nn.Module, card: ModelCard, path: Path) -> ModelCard:
    state = {k: v.detach().clone().contiguous() for k, v in network.state_dict().items()}
    card = card.model_copy(update={"weights_sha256": weights_sha256(state)})
    path.parent.mkdir(parents=True, exist_ok=True)
    save_whole({"format": FORMAT, "card": card.model_dump_json(), "state_dict": state}, path)
    return card


def partial_file(path: Path) -> Path:
    """Where ``save_whole`` writes before ``path`` is replaced."""
    return path.with_name(path.name + ".part")


def save_whole(payload: Mapping, path: Path) -> None:
    """``torch.save`` to ``path``'s partial file, then rename it over ``path``: a crash mid-write
    keeps the previous file intact, and a failed write (a full disk) leaves no partial file behind
    to keep filling the disk."""
    tmp = partial_file(path)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_model(path: Path) -> tuple[ResNet, ModelCard]:
    """Load and verify a model file; any problem is a ``ModelLoadError`` naming the file."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelLoadError(f"model file {path} does not exist") from None
    except Exception as exc:  # torch raises many types for foreign or damaged files
        raise ModelLoadError(f"{path} is not a loadable model file: {str(exc).splitlines()[0]}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelLoadError(f"{path} is not an eurosat-service model (expected format {FORMAT})")
    try:
        card = ModelCard.model_validate_json(payload["card"])
        network = build_resnet(card.architecture, len(card.class_names))
        network.load_state_dict(payload["state_dict"], strict=True, assign=True)  # no copy of each weight
    except Exception as exc:
        # torch lists what does not fit on the lines after its first ("Error(s) in loading ...")
        detail = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise ModelLoadError(f"{path} holds an unusable model: {detail[:400]}") from None
    actual = weights_sha256(payload["state_dict"])
    if actual != card.weights_sha256:
        raise ArtifactIntegrityError(
            f"{path}: weights sha256 {actual} does not match the model card's {card.weights_sha256}"
        )
    network.eval()
    return network, card
