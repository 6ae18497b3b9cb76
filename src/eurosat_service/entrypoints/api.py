"""``python -m eurosat_service.entrypoints.api``: serve the model over HTTP with uvicorn.

Flags and ``EUROSAT_*`` settings are validated, the port is bound, then the model is loaded and
verified, all before the server listens: a bad setting, a port in use or a model URI that cannot
be loaded ends the process with one ``error: ...`` line and exit code 2, and the service never
serves half-loaded.
``/readyz`` answers 503 until the warm-up inference ran, then 200. On SIGTERM uvicorn at once
closes the listening socket and every idle connection (a load balancer's probe then fails to
connect: no 503 is ever needed, or seen), finishes the requests in flight (up to
``shutdown_timeout_s``), closing each connection after its answer, then the inference worker
drains its queue.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

# OpenMP threads that wait by spinning steal the CPU the event loop and the decoders need, and
# collapse (2-10x slower) when anything else runs on the cores; sleeping waits cost little. The
# OpenMP runtime reads this when torch loads, so it is set before anything imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if __name__ == "__main__":
    # Starting up creates about a million objects that live as long as the process (torch's
    # operator registry, FastAPI's and pydantic's models); the collector only slows their creation
    # (measured: import torch 1.5-2.1 s instead of 2.0-2.4 s). main() turns it back on.
    gc.disable()

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.routing import Mount

from eurosat_service import __version__
from eurosat_service.domain.errors import EurosatError
from eurosat_service.entrypoints import cli
from eurosat_service.entrypoints.container import Container, build_container
from eurosat_service.entrypoints.web import demo, health, metrics, model_card, predictions
from eurosat_service.entrypoints.web.errors import install_error_handlers
from eurosat_service.entrypoints.web.middleware import BodySizeLimit, RequestLog

log = logging.getLogger("eurosat_service.api")

ROUTERS = (predictions, health, model_card, metrics, demo)
STARTUP_FAILURE = 3  # what uvicorn.run exits with when the server did not start


def create_app(container: Container | None = None) -> FastAPI:
    """The ASGI app over ``container``; the model loads (if not yet) when the app starts."""
    container = container or build_container()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        inference = container.inference()
        registry = container.metrics()
        card = inference.classifier.card
        registry.set_model(card.name, card.version, card.architecture, container.config.views())
        registry.track_queue_depth(lambda: inference.queue_depth)
        await run_in_threadpool(inference.start)  # warm-up runs off the event loop
        registry.ready.set(1)
        log.info("ready", extra={"fields": {"model": card.name, "model_version": card.version}})
        try:
            yield
        finally:
            registry.ready.set(0)
            await run_in_threadpool(inference.stop, container.config.shutdown_timeout_s())
            log.info("stopped")

    # FastAPI's /docs and /redoc load their scripts from a CDN: blank pages on a network without
    # internet access. FastAPIOffline serves the same pages with the scripts bundled in its wheel.
    app = FastAPIOffline(
        title="EuroSAT land-cover classifier",
        version=__version__,
        description="Classifies 64x64 satellite tiles into the ten EuroSAT land-cover classes.",
        lifespan=lifespan,
    )
    app.state.container = container
    for module in ROUTERS:
        app.include_router(module.router)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=container.config.max_upload_bytes())
    # exact paths: our routers' and the app's own (/openapi.json, /docs, /redoc); mounts: the docs' assets
    known = frozenset({route.path for m in ROUTERS for route in m.router.routes}  # type: ignore[attr-defined]
                      | {path for route in app.routes if (path := getattr(route, "path", None))})
    mounts = tuple(route.path for route in app.routes if isinstance(route, Mount))
    app.add_middleware(RequestLog, metrics=container.metrics(), endpoints=known,  # outermost: sees every status
                       mounts=mounts)
    return app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m eurosat_service.entrypoints.api", description=__doc__.splitlines()[0])
    p.add_argument("--host", help="interface to listen on [EUROSAT_HOST, default 127.0.0.1]")
    p.add_argument("--port", type=int, help="TCP port [EUROSAT_PORT, default 8000]")
    p.add_argument("--model-uri", help="a model store folder, a model.pt, or s3://bucket/prefix "
                                       "[EUROSAT_MODEL_URI, default: the model shipped in models/]")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from eurosat_service.adapters.glibc_malloc import keep_freed_memory, limit_malloc_arenas
    from eurosat_service.entrypoints.json_logging import setup_json_logging

    limit_malloc_arenas(1)  # before any thread starts: the workers' freed memory is reused, not kept apart
    keep_freed_memory()  # and not handed back to the kernel between forward passes
    args = parse_args(argv)
    setup_json_logging()
    overrides = {k: v for k, v in {"host": args.host, "port": args.port, "model_uri": args.model_uri}.items()
                 if v is not None}
    container = build_container(**overrides)  # validates the flags too (--port 70000), before any loading
    host, port = container.config.host(), container.config.port()
    sock = bound_socket(host, port)
    container.classifier()  # load and verify now: a bad model stops here, before the port opens
    gc.freeze()  # what start-up built stays for good: later collections need not walk it again
    gc.enable()
    app = create_app(container)
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        access_log=False,  # RequestLog writes a richer line per request
        log_config=None,  # keep setup_json_logging's handlers
        timeout_graceful_shutdown=container.config.shutdown_timeout_s(),
        server_header=False,
    ))
    server.run(sockets=[sock])  # listens on it once the lifespan's warm-up is done
    return 0 if server.started else STARTUP_FAILURE


def bound_socket(host: str, port: int) -> socket.socket:
    """The server's socket, bound first (as uvicorn would bind it, after loading the model): a
    port in use is one ``error:`` line at once, not a "ready" log line and then a bind error."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a restart need not wait out TIME_WAIT
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise EurosatError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


if __name__ == "__main__":
    cli.run(main)
