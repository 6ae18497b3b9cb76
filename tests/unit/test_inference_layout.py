"""How many inference workers and torch threads the service runs, and its malloc arenas."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from eurosat_service.adapters import cpu_quota
from eurosat_service.adapters.cpu_quota import available_cpus, inference_workers, threads_per_worker
from eurosat_service.adapters.glibc_malloc import keep_freed_memory, limit_malloc_arenas
from tests.unit.api_support import fake_classifier, fake_container


def test_a_fargate_quarter_vcpu_counts_as_one_cpu(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("25000 100000\n")
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus(tmp_path) == available_cpus(tmp_path / "missing")


@pytest.mark.parametrize("cpus", [1, 2, 8])
def test_by_default_one_single_threaded_worker_per_cpu(monkeypatch: pytest.MonkeyPatch, cpus: int) -> None:
    monkeypatch.setattr(cpu_quota, "available_cpus", lambda: cpus)
    assert inference_workers(0) == cpus
    assert threads_per_worker(0, inference_workers(0)) == 1


def test_explicit_workers_and_threads_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_quota, "available_cpus", lambda: 4)
    assert inference_workers(1) == 1
    assert threads_per_worker(0, 1) == 4  # one worker gets every CPU
    assert threads_per_worker(3, 2) == 3


def test_the_container_gives_the_batcher_the_resolved_worker_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_quota, "available_cpus", lambda: 3)
    auto = fake_container(fake_classifier()).inference()
    assert auto.batcher.workers == 3
    assert fake_container(fake_classifier(), inference_workers=1).inference().batcher.workers == 1


def test_malloc_arenas_are_limited_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas(1) is False  # glibc already read the user's setting; it stands
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    on_glibc = platform.libc_ver()[0] == "glibc"
    assert limit_malloc_arenas(8) is on_glibc  # (8: a cap this test process cannot notice)


@pytest.mark.parametrize("name, value", [
    ("MALLOC_TRIM_THRESHOLD_", "1048576"),
    ("MALLOC_MMAP_THRESHOLD_", "131072"),
    ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1048576"),
])
def test_freed_memory_is_kept_unless_the_user_set_a_threshold(monkeypatch: pytest.MonkeyPatch, name: str,
                                                              value: str) -> None:
    monkeypatch.setenv(name, value)
    assert keep_freed_memory() is False  # the user's thresholds stand
    monkeypatch.delenv(name)
    assert keep_freed_memory() is (platform.libc_ver()[0] == "glibc")
