"""Domain errors and framework errors -> JSON ``{"error", "detail"}`` with the right status.

Nothing here ever puts a traceback in a response. An unexpected exception is not handled here
but by ``RequestLog`` (middleware.py), inside which the request id and its log line live: a
generic 500 naming the request id, the traceback in the log only.
"""

from __future__ import annotations

from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from eurosat_service.domain.errors import (
    EurosatError,
    ImageTooLarge,
    InvalidImage,
    Overloaded,
    UnsupportedImageFormat,
)
from eurosat_service.entrypoints.web.schemas import ErrorOut

RETRY_AFTER_SECONDS = 1
# nginx's "client closed request": nobody receives it, but the log line and the metrics tell a
# client that went away mid-upload from a malformed request (FastAPI reports both as 400).
CLIENT_CLOSED_REQUEST = 499

# Most specific first: UnsupportedImageFormat is an InvalidImage.
DOMAIN_STATUS: tuple[tuple[type[EurosatError], int, str], ...] = (
    (UnsupportedImageFormat, 415, "unsupported_image_format"),
    (InvalidImage, 422, "invalid_image"),
    (ImageTooLarge, 413, "image_too_large"),
    (Overloaded, 503, "overloaded"),
)


class TooManyFiles(EurosatError):
    """More files in one batch request than the configured maximum."""


# What /docs lists for the prediction endpoints.
PREDICT_ERRORS = {
    413: {"model": ErrorOut, "description": "upload above the size limit, or an image with too many pixels"},
    415: {"model": ErrorOut, "description": "not an image format the service can read"},
    422: {"model": ErrorOut, "description": "missing field, too many files, corrupt or truncated image"},
    503: {"model": ErrorOut, "description": "the inference queue is full; retry after `Retry-After` seconds"},
}


def error_response(
    status: int, error: str, detail: str, headers: dict[str, str] | None = None, request: Request | None = None
) -> JSONResponse:
    if request is not None:
        request.scope.setdefault("state", {})["error"] = error  # for the request's log line
    return JSONResponse(ErrorOut(error=error, detail=detail).model_dump(), status_code=status, headers=headers)


def status_of(exc: EurosatError) -> tuple[int, str]:
    if isinstance(exc, TooManyFiles):
        return 422, "too_many_files"
    for kind, status, code in DOMAIN_STATUS:
        if isinstance(exc, kind):
            return status, code
    return 500, "internal_error"


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EurosatError)
    status, code = status_of(exc)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
    return error_response(status, code, str(exc), headers, request)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        # It was multipart: the part is missing, or the body ended before the part did
        hint = " (the multipart body holds no complete part of that name)"
    else:
        hint = " (send the image as multipart/form-data)"
    return error_response(422, "invalid_request", "; ".join(problems) + hint, request=request)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc.__cause__, ClientDisconnect):
        return error_response(CLIENT_CLOSED_REQUEST, "client_disconnected",
                              "the client closed the connection before its upload was complete", request=request)
    code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None), request)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(EurosatError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
