"""The micro-batcher and the inference use case on top of it, with a fake classifier."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from eurosat_service.domain.errors import ImageTooLarge, InvalidImage, Overloaded, UnsupportedImageFormat
from eurosat_service.service_layer.inference import InferenceService
from eurosat_service.service_layer.micro_batcher import MicroBatcher
from tests.unit.fakes import FakeClassifier, make_card


class RecordingBatch:
    """A batch function that doubles numbers, records batch sizes and can be held at a gate."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, items: list[int]) -> list[object]:
        self.gate.wait(5)
        self.batches.append(list(items))
        return [ValueError(f"bad {i}") if i < 0 else 2 * i for i in items]


def run(coro):
    return asyncio.run(coro)


def wait_until_idle(batcher: MicroBatcher, timeout: float = 10.0) -> None:
    """Until every worker sleeps waiting for work (CPython's Condition lists its ``_waiters``)."""
    deadline = time.monotonic() + timeout
    while len(batcher._cond._waiters) < batcher.workers:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.01)


def test_concurrent_submissions_are_gathered_into_one_batch() -> None:
    work = RecordingBatch()
    batcher = MicroBatcher(work, max_batch_size=8, max_wait_ms=200, max_queue=64)
    batcher.start()

    async def main():
        return await asyncio.gather(*(batcher.submit([i]) for i in range(5)))

    try:
        results = run(main())
    finally:
        batcher.stop()
    assert [r.results for r in results] == [[0], [2], [4], [6], [8]]
    assert work.batches == [[0, 1, 2, 3, 4]]
    assert {r.batch_size for r in results} == {5}


def test_a_full_batch_runs_without_waiting_for_max_wait() -> None:
    work = RecordingBatch()
    batcher = MicroBatcher(work, max_batch_size=4, max_wait_ms=3000, max_queue=64)
    batcher.start()
    started = time.monotonic()
    try:
        done = run(batcher.submit(list(range(1, 9))))
    finally:
        batcher.stop()
    assert done.results == [2, 4, 6, 8, 10, 12, 14, 16]
    assert work.batches == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert time.monotonic() - started < 2.5  # neither batch waited out max_wait


def test_a_batch_stays_open_while_requests_keep_joining_it() -> None:
    # One every 150 ms, well within max_wait: a fixed deadline after the oldest would have
    # closed the batch at 400 ms; waiting for a 400 ms pause gathers all five.
    work = RecordingBatch()
    batcher = MicroBatcher(work, max_batch_size=5, max_wait_ms=400, max_queue=64)
    batcher.start()

    async def trickle():
        async def one(i: int):
            await asyncio.sleep(0.15 * i)
            return await batcher.submit([i])
        return await asyncio.gather(*(one(i) for i in range(5)))

    try:
        run(trickle())
    finally:
        batcher.stop()
    assert work.batches == [[0, 1, 2, 3, 4]]


def test_a_lone_request_waits_max_wait_only() -> None:
    work = RecordingBatch()
    batcher = MicroBatcher(work, max_batch_size=8, max_wait_ms=300, max_queue=64)
    batcher.start()
    started = time.monotonic()
    try:
        assert run(batcher.submit([21])).results == [42]
    finally:
        batcher.stop()
    assert 0.29 < time.monotonic() - started < 2.0  # not the 8 x 300 ms cap


def test_the_bounded_queue_refuses_with_overloaded_then_recovers() -> None:
    work = RecordingBatch()
    batcher = MicroBatcher(work, max_batch_size=1, max_wait_ms=0, max_queue=2)
    batcher.start()
    work.gate.clear()  # hold the worker so the queue fills

    async def main():
        first = asyncio.ensure_future(batcher.submit([1]))  # taken by the worker, held at the gate
        await asyncio.sleep(0.1)
        queued = [asyncio.ensure_future(batcher.submit([i])) for i in (2, 3)]
        await asyncio.sleep(0.05)
        assert batcher.queue_depth == 2
        with pytest.raises(Overloaded, match="queue is full"):
            await batcher.submit([4])
        work.gate.set()
        results = [await first] + [await q for q in queued]
        after = await batcher.submit([5])
        return results, after

    try:
        results, after = run(main())
    finally:
        batcher.stop()
    assert [r.results for r in results] == [[2], [4], [6]]
    assert after.results == [10]


def test_an_empty_queue_admits_a_request_larger_than_the_queue() -> None:
    batcher = MicroBatcher(RecordingBatch(), max_batch_size=2, max_wait_ms=0, max_queue=1)
    batcher.start()
    try:
        assert run(batcher.submit([1, 2, 3])).results == [2, 4, 6]
    finally:
        batcher.stop()


def test_one_failing_item_fails_alone_and_a_crashing_batch_fails_its_items_only() -> None:
    calls = {"n": 0}

    def flaky(items: list[int]) -> list[object]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("boom")
        return [ValueError("negative") if i < 0 else i for i in items]

    batches: list[int] = []
    batcher = MicroBatcher(flaky, max_batch_size=8, max_wait_ms=20, max_queue=64, on_batch=batches.append)
    batcher.start()
    try:
        mixed = run(batcher.submit([1, -1, 3], return_exceptions=True))
        with pytest.raises(RuntimeError, match="boom"):
            run(batcher.submit([7]))
        assert run(batcher.submit([8])).results == [8]  # the worker survived
    finally:
        batcher.stop()
    assert mixed.results[0] == 1 and isinstance(mixed.results[1], ValueError) and mixed.results[2] == 3
    assert mixed.batch_size == 2
    assert batches == [2, 1]  # what was computed: not the failed item, not the crashed batch


def test_stop_finishes_queued_work_then_refuses_new_work() -> None:
    work = RecordingBatch()
    batcher = MicroBatcher(work, max_batch_size=2, max_wait_ms=0, max_queue=64)
    batcher.start()
    work.gate.clear()

    async def main():
        pending = [asyncio.ensure_future(batcher.submit([i])) for i in range(4)]
        await asyncio.sleep(0.05)
        stopper = threading.Thread(target=batcher.stop)
        stopper.start()
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded, match="not running"):
            await batcher.submit([9])
        work.gate.set()
        results = [await p for p in pending]
        stopper.join(5)
        return results

    assert [r.results for r in run(main())] == [[0], [2], [4], [6]]
    assert not batcher.running


def test_cancelled_requests_are_not_computed() -> None:
    work = RecordingBatch()
    batcher = MicroBatcher(work, max_batch_size=1, max_wait_ms=0, max_queue=64)
    batcher.start()
    work.gate.clear()

    async def main():
        first = asyncio.ensure_future(batcher.submit([1]))
        await asyncio.sleep(0.05)
        gone = asyncio.ensure_future(batcher.submit([2]))
        await asyncio.sleep(0.05)
        gone.cancel()  # the client went away while queued
        await asyncio.sleep(0.01)
        work.gate.set()
        return (await first).results, (await batcher.submit([3])).results

    try:
        assert run(main()) == ([2], [6])
    finally:
        batcher.stop()
    assert [2] not in work.batches


@pytest.mark.parametrize("decode_in", ["request", "worker"])
def test_inference_service_decodes_and_names_the_bad_image(decode_in: str) -> None:
    card = make_card(("Forest", "River", "SeaLake"))
    fake = FakeClassifier(card, answers={b"river": "River"})
    service = InferenceService(fake, max_batch_size=8, max_wait_ms=1, decode_in=decode_in)
    service.start()
    try:
        done = run(service.classify([b"river", b"forest"]))
        assert [p.label for p in done.results] == ["River", "Forest"]
        for bad, error in [(b"NOTANIMAGE", UnsupportedImageFormat), (b"CORRUPT", InvalidImage),
                           (b"BOMB", ImageTooLarge)]:
            with pytest.raises(error, match="image 2 of 3"):
                run(service.classify([b"river", bad, b"river"]))
            with pytest.raises(error) as single:
                run(service.classify([bad]))
            assert "of" not in str(single.value).split(":")[0]
        assert run(service.classify([b"river"])).results[0].label == "River"
    finally:
        service.stop()
    assert fake.warmed_up == [1]
    assert not service.ready


class CrashingDecoder(FakeClassifier):
    """Fails to decode ``CRASH`` with what no decoder should raise (a bug, not a bad image)."""

    def decode(self, image: bytes) -> bytes:
        if image == b"CRASH":
            raise RuntimeError("decoder bug")
        return super().decode(image)


@pytest.mark.parametrize("decode_in", ["request", "worker"])
def test_an_image_that_crashes_the_decoder_fails_its_own_request_only(decode_in: str) -> None:
    fake = CrashingDecoder(make_card(("Forest", "River", "SeaLake")), answers={b"river": "River"})
    # batches close when full: both requests ride in one
    service = InferenceService(fake, max_batch_size=2, max_wait_ms=1000, decode_in=decode_in)
    service.start()

    async def main():
        return await asyncio.gather(service.classify([b"CRASH"]), service.classify([b"river"]),
                                    return_exceptions=True)

    try:
        crashed, answered = run(main())
    finally:
        service.stop()
    assert isinstance(crashed, RuntimeError)
    assert not isinstance(answered, BaseException), answered
    assert [p.label for p in answered.results] == ["River"]


def test_several_workers_run_batches_at_once() -> None:
    seen: set[str] = set()
    both_running = threading.Barrier(2, timeout=5)

    def work(items: list[int]) -> list[int]:
        seen.add(threading.current_thread().name)
        both_running.wait()  # returns only if the other worker is inside a batch at the same time
        return items

    batcher = MicroBatcher(work, max_batch_size=1, max_wait_ms=0, max_queue=8, workers=2)
    batcher.start()

    async def main():
        return await asyncio.gather(batcher.submit([1]), batcher.submit([2]))

    try:
        assert [r.results for r in run(main())] == [[1], [2]]
    finally:
        batcher.stop()
    assert seen == {"inference-worker-0", "inference-worker-1"}


@pytest.mark.parametrize("batch_size, items", [(1, [1, 2, 3, 4]), (2, [1, 2, 3, 4, 5, 6, 7, 8])])
def test_one_large_request_is_spread_over_idle_workers(batch_size: int, items: list[int]) -> None:
    # submit() wakes one worker; the one that takes the first batch must wake the others for the
    # rest. Each batch waits at a barrier that opens only when all four run at once, so a batcher
    # that ran them one after another on one worker fails here however loaded the machine is.
    seen: list[str] = []
    all_running = threading.Barrier(4, timeout=10)

    def work(batch: list[int]) -> list[int]:
        seen.append(threading.current_thread().name)
        all_running.wait()
        return [2 * i for i in batch]

    # max_wait_ms is long: every batch is full, so none may wait for a pause either
    batcher = MicroBatcher(work, max_batch_size=batch_size, max_wait_ms=5000, max_queue=64, workers=4)
    batcher.start()
    wait_until_idle(batcher)  # else a worker still starting up finds the work by itself
    try:
        done = run(batcher.submit(items))
    finally:
        batcher.stop()
    assert done.results == [2 * i for i in items]
    assert sorted(seen) == [f"inference-worker-{n}" for n in range(4)]
