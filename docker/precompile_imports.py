"""Byte-compile the image's Python code, at build time, for a read-only runtime.

    python3 precompile_imports.py [EXTRA_ROOT ...]   # site-packages, plus e.g. /opt/app

The container runs as a user who cannot write ``__pycache__``, so anything not compiled here is
compiled again in memory at every start. Compiling everything costs space instead: torch, sympy
and networkx would gain about 100 MB of .pyc that serving never loads. So: every small package is
compiled whole, and the big ones only in the modules that loading the API and one inference
import. Unchecked-hash .pyc files are never revalidated against their source (the image does not
change), so copied file times do not matter.
"""

from __future__ import annotations

import compileall
import importlib
import py_compile
import sys
import sysconfig
from pathlib import Path

BIG = {"torch", "functorch", "torchgen", "sympy", "mpmath", "networkx"}
MODE = py_compile.PycInvalidationMode.UNCHECKED_HASH
# What starting the server and answering a request imports beyond ``import ...api``.
RUNTIME_MODULES = (
    "eurosat_service.entrypoints.api",
    "uvicorn.config", "uvicorn.server", "uvicorn.loops.auto", "uvicorn.loops.asyncio",
    "uvicorn.protocols.http.auto", "uvicorn.protocols.http.h11_impl", "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.websockets.auto", "uvicorn.lifespan.on",
    "PIL.JpegImagePlugin", "PIL.PngImagePlugin", "PIL.TiffImagePlugin", "PIL.WebPImagePlugin",
)


def exercise_inference() -> None:
    """One forward pass of the served architecture, so lazily imported torch modules load too."""
    import torch

    from eurosat_service.adapters.resnet import build_resnet

    network = build_resnet("resnet18", 10).eval()
    with torch.inference_mode():
        network(torch.zeros(1, 3, 64, 64))


def main(extra_roots: list[str]) -> int:
    site = Path(sysconfig.get_paths()["purelib"])
    roots = [site, *(Path(r) for r in extra_roots)]
    for name in RUNTIME_MODULES:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # optional parts (httptools, webp) may be absent
            print(f"precompile: skipping {name}: {exc}", file=sys.stderr)
    exercise_inference()

    loaded = 0
    for module in list(sys.modules.values()):
        source = getattr(module, "__file__", None) or ""
        if source.endswith(".py") and any(Path(source).is_relative_to(root) for root in roots):
            py_compile.compile(source, doraise=True, invalidation_mode=MODE)
            loaded += 1
    small = [p for p in site.iterdir() if p.is_dir() and p.name not in BIG and not p.name.endswith(".dist-info")]
    ok = all(compileall.compile_dir(p, quiet=1, invalidation_mode=MODE) for p in small)
    ok = compileall.compile_dir(site, maxlevels=0, quiet=1, invalidation_mode=MODE) and ok  # top-level modules
    ok = all([compileall.compile_dir(root, quiet=1, invalidation_mode=MODE) for root in roots[1:]]) and ok
    print(f"precompile: {loaded} imported modules, {len(small)} small packages compiled", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
