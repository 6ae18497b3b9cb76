"""The ``Classifier`` port on a plain PyTorch network: the serving side of ``model_file``.

Decoding and normalisation are the training pipeline's own (``adapters/preprocessing``), so the
API sees exactly the pixels and the input scale training saw. Needs torch alone (no torchvision).

The network runs with its batch norms folded into the convolutions and in channels-last memory
format (oneDNN's convolutions work in NHWC natively): together about a third less CPU time per
batch; probabilities differ from the training-side ones by under 1e-6 (the parity test holds
them to 1e-5).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path

# The CPU-only torch wheel warns on import when numpy is absent; serving never touches numpy.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch
from PIL import Image

from eurosat_service.adapters.augmentation import average_views, stack_views
from eurosat_service.adapters.cpu_quota import available_cpus
from eurosat_service.adapters.model_file import load_model
from eurosat_service.adapters.preprocessing import DEFAULT_MAX_PIXELS, decode_rgb, normalize
from eurosat_service.adapters.resnet import fold_batch_norms
from eurosat_service.domain.model_card import ModelCard
from eurosat_service.domain.prediction import Prediction
from eurosat_service.domain.views import view_transforms

MAX_VIEW_ROWS = 16  # tiles (images x views) per forward pass when views are averaged


class TorchClassifier:
    def __init__(
        self, model_path: Path | str, threads: int = 0, max_pixels: int = DEFAULT_MAX_PIXELS, views: int = 1
    ) -> None:
        """``threads`` is torch's intra-op thread count; 0 means one per CPU this process may use.
        ``views`` > 1 averages each image's probabilities over that many flips/rotations of it
        (``domain/views``): more accurate, ``views`` times the CPU per image."""
        self.threads = threads if threads > 0 else available_cpus()
        self.max_pixels = max_pixels
        view_transforms(views)  # refuses a count with no fixed set of views
        self.views = views
        _limit_interop_threads()
        torch.set_num_threads(self.threads)
        network, self._card = load_model(Path(model_path))
        self.network = fold_batch_norms(network, inplace=True).to(memory_format=torch.channels_last)
        self._class_names = tuple(self._card.class_names)

    @property
    def card(self) -> ModelCard:
        return self._card

    def decode(self, image: bytes) -> torch.Tensor:
        return decode_rgb(image, self._card.input_size, self.max_pixels)

    def predict(self, images: Sequence[bytes]) -> list[Prediction]:
        return self.predict_decoded([self.decode(image) for image in images])

    def predict_decoded(self, pixels: Sequence[torch.Tensor]) -> list[Prediction]:
        if not pixels:
            return []
        # The intra-op thread count is per calling thread under OpenMP: set it where we run.
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        with torch.inference_mode():
            batch = normalize(torch.stack(list(pixels)), self._card.normalization)
            # With 8 views a batch of 8 would be 64 tiles in one pass: 379-420 MiB peak RSS, too
            # close to a 512 MiB task. Passes of at most MAX_VIEW_ROWS tiles: 312 MiB, and the same
            # req/s within the noise (docs/benchmarks.md); one view keeps its single pass.
            step = len(batch) if self.views == 1 else max(1, MAX_VIEW_ROWS // self.views)
            probabilities = torch.cat([self._averaged(batch[i : i + step]) for i in range(0, len(batch), step)])
        version = self._card.version
        return [Prediction.from_probabilities(self._class_names, p, version) for p in probabilities.tolist()]

    def _averaged(self, batch: torch.Tensor) -> torch.Tensor:
        views = stack_views(batch, self.views).contiguous(memory_format=torch.channels_last)
        return average_views(torch.softmax(self.network(views), dim=1), self.views)

    def warm_up(self, batch_sizes: Sequence[int] = (1,)) -> None:
        """One forward per batch size (oneDNN picks and caches its kernels on first use), fed by a
        decoded JPEG so that the decoding path has run once too."""
        size = self._card.input_size
        encoded = io.BytesIO()
        Image.new("RGB", (size, size)).save(encoded, "JPEG")
        pixels = self.decode(encoded.getvalue())
        for n in batch_sizes:
            self.predict_decoded([pixels] * n)


def _limit_interop_threads() -> None:
    # One inference worker runs one forward at a time, so an inter-op pool only costs memory.
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or parallel work already ran in this process
        pass
