"""``GET /``: the one-page demo (static HTML + JS shipped inside the package).

Its inline script is allowed by hash in a strict Content-Security-Policy, so the page can load
nothing from elsewhere and run no other script.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["demo"])


@cache
def _page() -> tuple[str, str]:
    html = resources.files("eurosat_service.entrypoints.web").joinpath("static/index.html").read_text("utf-8")
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    )
    csp = (f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src blob:; "
           "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return html, csp


@router.get("/", response_class=HTMLResponse, summary="Demo page", include_in_schema=False)
async def demo() -> HTMLResponse:
    html, csp = _page()
    return HTMLResponse(html, headers={"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff"})
