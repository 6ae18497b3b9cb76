"""Benchmark the inference engine against a naive FastAPI baseline, on loopback, same load.

    .venv/bin/python bench/bench_api.py --service-python .venv-cpu/bin/python

In each of ``--rounds`` rounds it measures the raw throughput of the served network alone (at
batch sizes 1 to 32, in the service's layout of workers and threads and as one stream on every
core: the faster is the ceiling), then starts the service
(``python -m eurosat_service.entrypoints.api``) and then the baseline (``bench/naive_app.py``:
eager PyTorch, one forward per request, torchvision transforms) and the framework's floor
(``bench/floor_app.py``: FastAPI taking the upload and answering, no model), each fresh, and
drives each with the same closed-loop load (``--clients`` keep-alive connections posting real
EuroSAT tiles for ``--duration`` seconds after a warm-up). It prints the median over the rounds
of requests/s, p50/p99 latency, time-to-ready and CPU per request, the peak RSS, their ratios,
the service's fraction of the best raw batched throughput, the ratio a server with no overhead
at all would reach, and the ceilings for any FastAPI server: what one that spent only the
floor's CPU, the decoding's and the network's per request could reach on these CPUs.
``--json`` writes every figure, round by round, to a file as well.

The load generator is a minimal asyncio HTTP/1.1 client (a few microseconds of CPU a request),
so it takes as little CPU as possible from the servers it measures on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import free_port, real_images  # shared helpers

TARGETS = {"throughput_ratio": 4.0, "p99_ms": 150.0, "raw_fraction": 0.70, "rss_mib": 350.0, "ready_s": 3.0}

# The served network exactly as the service runs it (TorchClassifier: batch norms folded,
# channels-last; the service's malloc settings), in a given layout: ``workers`` threads each
# running its own forward passes with ``threads`` torch threads, at each batch size; the best of
# them is the ceiling.
RAW_THROUGHPUT = r"""
import json, resource, sys, threading, time
from pathlib import Path
from eurosat_service.adapters.glibc_malloc import keep_freed_memory, limit_malloc_arenas
limit_malloc_arenas(1)
keep_freed_memory()
import torch
from eurosat_service.adapters.preprocessing import normalize
from eurosat_service.adapters.torch_classifier import TorchClassifier
path, workers, threads, batches, seconds, *images = sys.argv[1:]
workers, seconds = int(workers), float(seconds)
classifier = TorchClassifier(path, threads=int(threads))
uploads = [Path(p).read_bytes() for p in images]
pixels = [classifier.decode(upload) for upload in uploads]
def cpu_s():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
cpu = cpu_s()
for _ in range(20):
    for upload in uploads:
        classifier.decode(upload)
decode_cpu_ms = 1000 * (cpu_s() - cpu) / (20 * len(uploads))
norm = classifier.card.normalization
rates, cpu_ms = {}, {}
def forward(x):
    return torch.softmax(classifier.network(normalize(x, norm).contiguous(memory_format=torch.channels_last)), dim=1)
def stream(x, until, done, k):
    with torch.inference_mode():
        while time.perf_counter() < until:
            forward(x)
            done[k] += len(x)
for batch in map(int, batches.split(",")):
    x = torch.stack([pixels[i % len(pixels)] for i in range(batch)])
    with torch.inference_mode():
        for _ in range(3):
            forward(x)
    done, start, cpu = [0] * workers, time.perf_counter(), cpu_s()
    streams = [threading.Thread(target=stream, args=(x, start + seconds, done, k)) for k in range(workers)]
    for s in streams:
        s.start()
    for s in streams:
        s.join()
    rates[batch] = sum(done) / (time.perf_counter() - start)
    cpu_ms[batch] = 1000 * (cpu_s() - cpu) / sum(done)
best = max(rates, key=rates.get)
print(json.dumps({"images_per_s": rates[best], "cpu_ms_per_image": cpu_ms[best], "by_batch": rates,
                  "cpu_ms_by_batch": cpu_ms, "decode_cpu_ms": decode_cpu_ms, "workers": workers,
                  "threads": classifier.threads, "torch": torch.__version__}))
"""


@dataclass
class Result:
    name: str
    python: str
    torch: str
    ready_s: float
    requests: int
    errors: dict[str, int]
    rps: float
    p50_ms: float
    p99_ms: float
    peak_rss_mib: float
    cpu_ms: float  # the server's CPU time per answered request (every thread)
    loadgen_cpu_ms: float  # the load generator's, per request


def multipart_request(host: str, port: int, path: str, image: Path) -> bytes:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{image.name}\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + image.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body


async def _client(host: str, port: int, requests: list[bytes], offset: int, until: float,
                  latencies: list[float], statuses: Counter) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = offset
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            length, close = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"connection" and value.strip().lower() == b"close":
                    close = True
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[int(head[9:12])] += 1
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def drive(host: str, port: int, requests: list[bytes], clients: int,
                seconds: float) -> tuple[list[float], Counter]:
    latencies: list[float] = []
    statuses: Counter = Counter()
    until = time.perf_counter() + seconds
    await asyncio.gather(*(_client(host, port, requests, n, until, latencies, statuses) for n in range(clients)))
    return latencies, statuses


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def process_cpu_s(pid: int) -> float:
    """User + system CPU time of a process, all its threads, from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def torch_version(python: str) -> str:
    out = subprocess.run([python, "-c", "import torch; print(torch.__version__)"],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() or "?"


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:  # refused, reset, or 503 (HTTPError) while starting
            pass
        time.sleep(0.02)
    raise SystemExit(f"{url} not ready within {timeout}s")


def measure(name: str, python: str, command: list[str], env: dict[str, str], args: argparse.Namespace,
            images: list[Path], log_dir: Path) -> Result:
    port = free_port()
    started = time.perf_counter()
    with open(log_dir / f"{name}.log", "wb") as log:
        proc = subprocess.Popen([python, *command, "--port", str(port)], env={**os.environ, **env}, cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        ready_s = time.perf_counter() - started
        requests = [multipart_request("127.0.0.1", port, "/predict", image) for image in images]
        asyncio.run(drive("127.0.0.1", port, requests, args.clients, args.warmup))
        server_cpu, loadgen_cpu = process_cpu_s(proc.pid), time.process_time()
        latencies, statuses = asyncio.run(drive("127.0.0.1", port, requests, args.clients, args.duration))
        server_cpu, loadgen_cpu = process_cpu_s(proc.pid) - server_cpu, time.process_time() - loadgen_cpu
        rss = peak_rss_mib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    ok = statuses.get(200, 0)
    return Result(
        name=name, python=python, torch="-" if name == "floor" else torch_version(python),
        ready_s=round(ready_s, 2), requests=ok,
        errors={str(k): v for k, v in statuses.items() if k != 200}, rps=round(ok / args.duration, 1),
        p50_ms=round(1000 * percentile(latencies, 0.50), 1), p99_ms=round(1000 * percentile(latencies, 0.99), 1),
        peak_rss_mib=round(rss, 1), cpu_ms=round(1000 * server_cpu / max(ok, 1), 3),
        loadgen_cpu_ms=round(1000 * loadgen_cpu / max(ok, 1), 3),
    )


def raw_throughput(python: str, model_path: Path, layout: tuple[int, int], batches: list[int],
                   images: list[Path]) -> dict:
    """The network alone in a (workers, threads) layout: img/s at each batch size, and the best."""
    env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ}  # what the service sets for itself
    workers, threads = layout
    out = subprocess.run([python, "-c", RAW_THROUGHPUT, str(model_path), str(workers), str(threads),
                          ",".join(map(str, batches)), "3",
                          *map(str, images)], capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def parse_args() -> argparse.Namespace:
    shipped = ROOT / "models" / "eurosat-resnet18"
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-uri", default=str(shipped), help="the model both servers load [%(default)s]")
    p.add_argument("--service-python", default=sys.executable,
                   help="interpreter for the service (use .venv-cpu/bin/python for the CPU-only torch RSS)")
    p.add_argument("--baseline-python", default=sys.executable, help="interpreter for the baseline (needs torchvision)")
    p.add_argument("--clients", type=int, default=16, help="concurrent keep-alive connections [%(default)s]")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per server and round [%(default)s]")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are reported [%(default)s]")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds of load first [%(default)s]")
    p.add_argument("--json", type=Path, help="also write all figures to this file")
    p.add_argument("--skip-baseline", action="store_true")
    return p.parse_args()


def median_result(runs: list[Result]) -> Result:
    """The median of each figure over the rounds (peak RSS: the highest), so one noisy round
    on a shared machine does not decide the outcome."""
    def med(values):
        return round(statistics.median(values), 2)

    first = runs[0]
    errors: Counter = Counter()
    for r in runs:
        errors.update(r.errors)
    return Result(name=first.name, python=first.python, torch=first.torch, ready_s=med(r.ready_s for r in runs),
                  requests=sum(r.requests for r in runs), errors=dict(errors), rps=med(r.rps for r in runs),
                  p50_ms=med(r.p50_ms for r in runs), p99_ms=med(r.p99_ms for r in runs),
                  peak_rss_mib=max(r.peak_rss_mib for r in runs), cpu_ms=med(r.cpu_ms for r in runs),
                  loadgen_cpu_ms=med(r.loadgen_cpu_ms for r in runs))


def main() -> int:
    args = parse_args()
    from eurosat_service.adapters.artifact_uri import resolve_model_file
    from eurosat_service.adapters.cpu_quota import available_cpus, inference_workers, threads_per_worker
    from eurosat_service.entrypoints.settings import Settings

    settings = Settings(model_uri=args.model_uri)
    model_path = resolve_model_file(args.model_uri, settings.model_cache_dir, s3_client=lambda: None)
    images = real_images()
    env = {"EUROSAT_MODEL_URI": args.model_uri, "PYTHONUNBUFFERED": "1"}
    workers = inference_workers(settings.inference_workers)
    threads = threads_per_worker(settings.inference_threads, workers)
    print(f"model {model_path}; {len(images)} real EuroSAT tiles; {args.clients} clients; {args.rounds} rounds "
          f"of {args.duration:.0f}s measured after {args.warmup:.0f}s warm-up; {available_cpus()} CPUs; "
          f"max_batch_size={settings.max_batch_size} max_wait_ms={settings.max_wait_ms} "
          f"inference_workers={workers} inference_threads={threads} decode_in={settings.decode_in} "
          f"views={settings.views}", flush=True)

    # Start from bytecode, as an installed package (or the container, which precompiles) does:
    # where PYTHONDONTWRITEBYTECODE is set, as on our CI machines, every start would compile src/.
    subprocess.run([args.service_python, "-m", "compileall", "-q", str(ROOT / "src")], check=True)
    # With `clients` requests in flight shared by `workers` workers, a batch averages at most this:
    load_batch = max(1, min(settings.max_batch_size, args.clients // workers))
    batches = sorted({1, 8, 16, 32, settings.max_batch_size, load_batch})
    # The ceiling is the network's best on this machine: in the service's own layout and as one
    # stream on every core, whichever is faster, so a layout choice cannot lower the bar.
    layouts = list(dict.fromkeys([(workers, threads), (1, available_cpus())]))
    servers = [("service", args.service_python, ["-m", "eurosat_service.entrypoints.api"], env)]
    if not args.skip_baseline:
        servers.append(("baseline", args.baseline_python, ["-m", "uvicorn", "bench.naive_app:app", "--log-level",
                        "warning"], {"NAIVE_MODEL_PATH": str(model_path), "PYTHONPATH": str(ROOT)}))
    # FastAPI taking the upload and answering, no model: what the web stack alone costs per request
    servers.append(("floor", args.service_python, ["-m", "uvicorn", "bench.floor_app:app", "--log-level", "warning",
                    "--no-access-log"], {"PYTHONPATH": str(ROOT)}))
    # Rounds alternate raw, service, baseline and floor, so a slow minute on a shared machine hits all.
    raws: list[list[dict]] = []
    runs: dict[str, list[Result]] = {name: [] for name, *_ in servers}
    with tempfile.TemporaryDirectory(prefix="bench-api-") as logs:
        for n in range(args.rounds):
            raws.append([raw_throughput(args.service_python, model_path, layout, batches, images)
                         for layout in layouts])
            line = [f"round {n + 1}: raw " + " / ".join(
                f"{r['images_per_s']:.0f} img/s ({r['workers']}x{r['threads']})" for r in raws[-1])]
            for name, python, command, server_env in servers:
                runs[name].append(measure(name, python, command, server_env, args, images, Path(logs)))
                line.append(f"{name} {runs[name][-1].rps} req/s p99 {runs[name][-1].p99_ms} ms")
            print("; ".join(line), flush=True)
    results = {name: median_result(r) for name, r in runs.items()}
    best_rounds = [max(round_raws, key=lambda r: r["images_per_s"]) for round_raws in raws]
    best_raw = statistics.median(r["images_per_s"] for r in best_rounds)
    raw_cpu_ms = statistics.median(r["cpu_ms_per_image"] for r in best_rounds)
    # the network's cheapest CPU per image at any batch this load can fill, in any layout
    load_cpu_ms = statistics.median(min(cost for r in round_raws for b, cost in r["cpu_ms_by_batch"].items()
                                        if int(b) <= load_batch) for round_raws in raws)
    decode_cpu_ms = statistics.median(r["decode_cpu_ms"] for round_raws in raws for r in round_raws)
    print(f"\nraw throughput of the network alone (torch {raws[0][0]['torch']}), median img/s by batch size:")
    for k, (w, t) in enumerate(layouts):
        by_batch = ", ".join(f"{b}: {statistics.median(r[k]['by_batch'][b] for r in raws):.0f}"
                             for b in raws[0][k]["by_batch"])
        print(f"  {w} stream(s) x {t} thread(s){' (the service)' if k == 0 else ''}: {by_batch}")
    print(f"  best: {best_raw:.0f} img/s, {raw_cpu_ms:.2f} ms of CPU per image; {load_cpu_ms:.2f} ms at the "
          f"best batch of at most {load_batch} ({args.clients} clients / {workers} workers); decoding an upload "
          f"{decode_cpu_ms:.2f} ms", flush=True)

    print(f"\n{'median':10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'peak RSS MiB':>14}{'ready s':>9}"
          f"{'CPU ms/req':>12}{'(load gen)':>11}  torch / errors")
    for r in results.values():
        print(f"{r.name:10}{r.rps:>9}{r.p50_ms:>9}{r.p99_ms:>9}{r.peak_rss_mib:>14}{r.ready_s:>9}"
              f"{r.cpu_ms:>12}{r.loadgen_cpu_ms:>11}  {r.torch} / {r.errors}")
    service, baseline, floor = results["service"], results.get("baseline"), results["floor"]
    # The most any FastAPI server of this network could answer here, every CPU busy with nothing but
    # the framework's floor, the load generator's share, decoding the upload and the network's
    # pass, perfectly packed: an upper bound. At the network's best batch (what unlimited clients
    # would allow), and at the best batch this load's clients can fill.
    per_request = floor.cpu_ms + floor.loadgen_cpu_ms + decode_cpu_ms
    stack_ceiling = available_cpus() * 1000 / (per_request + raw_cpu_ms)
    load_ceiling = available_cpus() * 1000 / (per_request + load_cpu_ms)
    summary = {"service_fraction_of_raw": round(service.rps / best_raw, 3),
               "stack_ceiling_rps": round(stack_ceiling, 1),
               "stack_ceiling_fraction_of_raw": round(stack_ceiling / best_raw, 3),
               "load_ceiling_rps": round(load_ceiling, 1),
               "load_ceiling_fraction_of_raw": round(load_ceiling / best_raw, 3)}
    if baseline is not None:
        summary["throughput_ratio"] = round(service.rps / baseline.rps, 2)
        # what a server with no overhead at all would reach: the network's best batched rate
        summary["throughput_ratio_ceiling"] = round(best_raw / baseline.rps, 2)
        summary["stack_ceiling_ratio"] = round(stack_ceiling / baseline.rps, 2)
        summary["load_ceiling_ratio"] = round(load_ceiling / baseline.rps, 2)
        summary["p99_ratio"] = round(service.p99_ms / baseline.p99_ms, 2)
        summary["rss_ratio"] = round(service.peak_rss_mib / baseline.peak_rss_mib, 2)
    print("\n" + "\n".join(f"{k}: {v}" for k, v in summary.items()))
    ratio, fraction = summary.get("throughput_ratio", 0), summary["service_fraction_of_raw"]
    checks = {
        f"throughput >= {TARGETS['throughput_ratio']}x baseline": ratio >= TARGETS["throughput_ratio"],
        f"p99 < {TARGETS['p99_ms']:.0f} ms": service.p99_ms < TARGETS["p99_ms"],
        f">= {TARGETS['raw_fraction']:.0%} of raw batched throughput": fraction >= TARGETS["raw_fraction"],
        f"peak RSS < {TARGETS['rss_mib']:.0f} MiB (torch {service.torch})": service.peak_rss_mib < TARGETS["rss_mib"],
        f"ready < {TARGETS['ready_s']:.0f} s": service.ready_s < TARGETS["ready_s"],
    }
    print("\n" + "\n".join(f"[{'PASS' if ok else 'FAIL'}] {name}" for name, ok in checks.items()))
    if args.json:
        args.json.write_text(json.dumps({
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "settings": {"clients": args.clients, "duration_s": args.duration, "rounds": args.rounds,
                         "max_batch_size": settings.max_batch_size, "max_wait_ms": settings.max_wait_ms,
                         "inference_threads": threads, "inference_workers": workers,
                         "decode_in": settings.decode_in, "views": settings.views},
            "raw": {"best_median": best_raw, "by_round": raws},
            "rounds": {name: [asdict(r) for r in rs] for name, rs in runs.items()},
            "results": [asdict(r) for r in results.values()], "summary": summary, "checks": checks,
        }, indent=2))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
