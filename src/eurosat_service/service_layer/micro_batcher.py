"""Dynamic micro-batching, the way TorchServe, Triton and BentoML batch: requests from many
coroutines wait in one bounded queue; a worker thread opens a batch when it is free and work is
waiting, and runs it once it is full (``max_batch_size``), or once no image has joined it for
``max_wait_ms``, and at the latest ``max_batch_size`` x ``max_wait_ms`` after it opened.

Why: one forward pass over N images costs far less than N passes of one, and running it on a
thread of its own keeps the event loop free to parse the next requests meanwhile. Why wait for
a pause rather than a fixed time after the oldest request: under load the oldest has usually
waited for a free worker already, so a fixed deadline closed batches of one or two while their
batch-mates were still being parsed; a lone request still waits ``max_wait_ms`` only. With
``workers`` > 1, that many threads take batches from the same queue and run them at once (for a
small network, single-threaded passes side by side use the cores better than one multi-threaded
pass); a worker that takes a batch and leaves images behind wakes another for them, so the
batches of one large request run side by side too. The queue is bounded so that under overload
requests fail fast (``Overloaded``) instead of waiting ever longer. Plain Python (threading +
asyncio): what runs the batch is injected.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from eurosat_service.domain.errors import Overloaded

T = TypeVar("T")
R = TypeVar("R")

# Runs one batch; returns one result per item, or an exception instance for an item that failed.
BatchFunction = Callable[[list[T]], Sequence[Any]]


@dataclass(slots=True)
class _Job:
    item: Any
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    enqueued: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class BatchedResults(Generic[R]):
    results: list[R]
    batch_size: int  # the largest micro-batch any of the items ran in


class MicroBatcher(Generic[T, R]):
    def __init__(
        self,
        run_batch: BatchFunction,
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        max_queue: int = 64,
        on_batch: Callable[[int], None] | None = None,
        workers: int = 1,
    ) -> None:
        if max_batch_size < 1 or max_queue < 1 or max_wait_ms < 0 or workers < 1:
            raise ValueError("max_batch_size, max_queue and workers must be >= 1 and max_wait_ms >= 0")
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self._on_batch = on_batch
        self.workers = workers
        self._pending: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._accepting = False
        self._stopping = False
        self._threads: list[threading.Thread] = []

    @property
    def queue_depth(self) -> int:
        return len(self._pending)

    @property
    def running(self) -> bool:
        return self._accepting and any(t.is_alive() for t in self._threads)

    def start(self) -> None:
        with self._cond:
            if self._threads:
                return
            self._accepting, self._stopping = True, False
            self._threads = [threading.Thread(target=self._work, name=f"inference-worker-{n}", daemon=True)
                             for n in range(self.workers)]
            for thread in self._threads:
                thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Refuse new work, finish what is queued, then end the workers."""
        with self._cond:
            self._accepting = False
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    async def submit(self, items: Sequence[T], return_exceptions: bool = False) -> BatchedResults[R]:
        """Queue all ``items`` (or none: ``Overloaded``) and wait for their results in order.

        An item's failure is raised as its exception, or returned in its place with
        ``return_exceptions``. A request is always admitted to an empty queue, so a batch
        request larger than ``max_queue`` is slow rather than impossible.
        """
        if not items:
            return BatchedResults([], 0)
        loop = asyncio.get_running_loop()
        jobs = [_Job(item, loop.create_future(), loop) for item in items]
        with self._cond:
            if not self._accepting:
                raise Overloaded("the inference worker is not running (starting up or shutting down)")
            depth = len(self._pending)
            if depth and depth + len(jobs) > self.max_queue:
                raise Overloaded(f"the inference queue is full ({depth} images waiting); retry shortly")
            self._pending.extend(jobs)
            self._cond.notify()
        outcomes = await asyncio.gather(*(job.future for job in jobs), return_exceptions=True)
        results, sizes = [], [0]
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                if not return_exceptions or isinstance(outcome, asyncio.CancelledError):
                    raise outcome
                results.append(outcome)
            else:
                results.append(outcome[0])
                sizes.append(outcome[1])
        return BatchedResults(results, max(sizes))

    # -- worker thread ------------------------------------------------------------------------
    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            live = [job for job in batch if not job.future.cancelled()]  # clients that went away
            if not live:
                continue
            try:
                results = list(self._run_batch([job.item for job in live]))
                if len(results) != len(live):
                    raise RuntimeError(f"batch function returned {len(results)} results for {len(live)} items")
            except Exception as exc:  # noqa: BLE001  # a failing batch fails its requests, never the worker
                results = [exc] * len(live)
            computed = sum(not isinstance(r, BaseException) for r in results)  # items that failed alone
            if self._on_batch is not None and computed:  # (e.g. a corrupt upload) were not classified
                self._on_batch(computed)
            for job, result in zip(live, results):
                try:
                    job.loop.call_soon_threadsafe(_settle, job.future, result, computed)
                except RuntimeError:  # the event loop is closed: nobody is waiting any more
                    pass

    def _next_batch(self) -> list[_Job] | None:
        with self._cond:
            while True:
                while not self._pending:
                    if self._stopping:
                        return None
                    self._cond.wait()
                opened = time.monotonic()
                latest = opened + self.max_wait * self.max_batch_size
                while self._pending and len(self._pending) < self.max_batch_size and not self._stopping:
                    last_joined = max(opened, self._pending[-1].enqueued)
                    remaining = min(latest, last_joined + self.max_wait) - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                if self._pending:  # (another worker may have taken everything meanwhile)
                    count = min(len(self._pending), self.max_batch_size)
                    batch = [self._pending.popleft() for _ in range(count)]
                    if self._pending:
                        # submit() woke one worker only: hand what is left to another (which opens its
                        # own batch, full at once or after the usual pause), or a large request's
                        # batches would run one after another on this worker.
                        self._cond.notify()
                    return batch


def _settle(future: asyncio.Future, result: Any, batch_size: int) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result((result, batch_size))
