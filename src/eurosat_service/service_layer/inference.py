"""The inference use case: classify uploaded images through one shared micro-batcher.

Where images are decoded is a setting, because it is a measured trade-off (docs/benchmarks.md):
``"request"`` decodes each upload in a small thread pool while the request is handled, so a bad
image fails before it takes a queue slot and decoding overlaps the worker's forward passes;
``"worker"`` (the default) decodes inside the batch, on the inference thread, with one thread
hop less. With one single-threaded worker per CPU the workers decode in parallel anyway, and
"worker" answered 8-18 % more requests per second, with a lower p99, on 2 CPUs; with one
multi-threaded worker, decoding there left its other threads idle and "request" was faster.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from eurosat_service.domain.errors import EurosatError
from eurosat_service.domain.ports import Classifier
from eurosat_service.domain.prediction import Prediction
from eurosat_service.service_layer.micro_batcher import BatchedResults, MicroBatcher

DecodeIn = Literal["request", "worker"]


class InferenceService:
    def __init__(
        self,
        classifier: Classifier,
        *,
        max_batch_size: int = 8,
        max_wait_ms: float = 5.0,
        max_queue: int = 64,
        decode_in: DecodeIn = "worker",
        decode_threads: int = 2,
        on_batch: Callable[[int], None] | None = None,
        workers: int = 1,
    ) -> None:
        if decode_in not in ("request", "worker"):
            raise ValueError(f"decode_in must be 'request' or 'worker', not {decode_in!r}")
        self.classifier = classifier
        self.decode_in = decode_in
        self._decode_threads = decode_threads
        self._decode_pool: ThreadPoolExecutor | None = None
        run = classifier.predict_decoded if decode_in == "request" else self._decode_and_predict
        self.batcher: MicroBatcher[Any, Prediction] = MicroBatcher(
            run, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, max_queue=max_queue, on_batch=on_batch,
            workers=workers,
        )
        self.ready = False

    def start(self) -> None:
        """Warm the model up with one inference, then take requests. One image is enough: the
        first pass at each further batch size costs only 5-12 ms more than its later ones, which
        sizes 2 to 31 pay anyway, while warming the largest batch too delayed readiness by about
        0.1 s (docs/benchmarks.md)."""
        self.classifier.warm_up([1])
        if self.decode_in == "request":
            self._decode_pool = ThreadPoolExecutor(self._decode_threads, thread_name_prefix="decode")
        self.batcher.start()
        self.ready = True

    def stop(self, timeout: float | None = None) -> None:
        """Stop taking requests and finish the queued ones."""
        self.ready = False
        self.batcher.stop(timeout)
        if self._decode_pool is not None:
            self._decode_pool.shutdown(wait=True)
            self._decode_pool = None

    @property
    def queue_depth(self) -> int:
        return self.batcher.queue_depth

    async def classify(self, images: Sequence[bytes]) -> BatchedResults[Prediction]:
        """One prediction per image, in order; a bad image raises its ``EurosatError``, naming
        its position when there are several."""
        items: Sequence[Any] = images
        if self.decode_in == "request" and self._decode_pool is not None:
            loop = asyncio.get_running_loop()
            items = await asyncio.gather(
                *(loop.run_in_executor(self._decode_pool, self.classifier.decode, image) for image in images),
                return_exceptions=True,
            )
            _raise_first_error(items)
        done = await self.batcher.submit(items, return_exceptions=True)
        _raise_first_error(done.results)
        return done

    def _decode_and_predict(self, images: list[bytes]) -> list[Prediction | Exception]:
        decoded: list[Any] = []
        for image in images:
            try:
                decoded.append(self.classifier.decode(image))
            except Exception as exc:  # noqa: BLE001  # this image fails alone; the rest of the batch
                decoded.append(exc)  # (other clients' uploads) runs, even when the decoder has a bug
        good = [d for d in decoded if not isinstance(d, Exception)]
        predictions = iter(self.classifier.predict_decoded(good))
        return [d if isinstance(d, Exception) else next(predictions) for d in decoded]


def _raise_first_error(results: Sequence[Any]) -> None:
    errors = [(i, r) for i, r in enumerate(results) if isinstance(r, BaseException)]
    if not errors:
        return
    index, error = errors[0]
    if len(results) > 1 and isinstance(error, EurosatError):
        raise type(error)(f"image {index + 1} of {len(results)}: {error}") from None
    raise error
