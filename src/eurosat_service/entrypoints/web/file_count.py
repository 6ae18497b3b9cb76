"""How many files a prediction request may carry, enforced while its form is parsed.

FastAPI parses a multipart form with Starlette's defaults before any endpoint code or dependency
runs: at most 1000 files, whatever the service allows, with a 400 of Starlette's beyond that, and
every file up to it read and spooled before the endpoint can count them. ``FileCountRoute`` parses
the form first, capped at the endpoint's own count (``takes_files``): Starlette stops at the first
file over it, before reading that file's bytes, and FastAPI then uses the parsed form as it is
(``Request`` keeps it). The refusal is our 422 ``too_many_files``, the same at any count.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from eurosat_service.entrypoints.web.errors import TooManyFiles

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


@dataclass(frozen=True)
class FileCount:
    allowed: Callable[[Request], int]  # for the app serving this request (settings live in its container)
    refusal: Callable[[int], str]  # the 422's detail, given the allowed count


def takes_files(allowed: Callable[[Request], int], refusal: Callable[[int], str]) -> Callable[[Endpoint], Endpoint]:
    """Marks an endpoint with the number of files it takes (read by ``FileCountRoute``)."""
    def mark(endpoint: Endpoint) -> Endpoint:
        endpoint.file_count = FileCount(allowed, refusal)  # type: ignore[attr-defined]
        return endpoint
    return mark


class FileCountRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handle = super().get_route_handler()
        count: FileCount | None = getattr(self.endpoint, "file_count", None)
        if count is None:
            return handle

        async def parse_capped_then_handle(request: Request) -> Response:
            allowed = count.allowed(request)
            try:
                await request.form(max_files=allowed)
            except HTTPException as exc:
                if isinstance(exc.__context__, MultiPartException) and exc.__context__.message.startswith(
                        "Too many files"):
                    raise TooManyFiles(count.refusal(allowed)) from None
                raise
            except Exception as exc:  # what FastAPI's own parsing turns a failure into (a client gone: 499)
                raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc
            return await handle(request)

        return parse_capped_then_handle
