"""``POST /predict`` and ``POST /predict/batch``: multipart uploads in, predictions out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile

from eurosat_service.entrypoints.web.dependencies import Inference, MaxBatchFiles
from eurosat_service.entrypoints.web.errors import PREDICT_ERRORS, TooManyFiles
from eurosat_service.entrypoints.web.schemas import BatchPredictionOut, PredictionOut

router = APIRouter(tags=["predictions"], responses=PREDICT_ERRORS)

ImageFile = Annotated[UploadFile, File(description="one image: JPEG, PNG, TIFF, WebP, ... (EuroSAT tiles are 64x64)")]
ImageFiles = Annotated[list[UploadFile], File(description="several images, answered in the same order")]


@router.post("/predict", response_model=PredictionOut, summary="Classify one image")
async def predict(request: Request, file: ImageFile, inference: Inference) -> PredictionOut:
    await _refuse_extra_files(request)
    done = await inference.classify([await file.read()])
    request.state.images, request.state.batch_size = 1, done.batch_size
    return PredictionOut.of(done.results[0])


@router.post("/predict/batch", response_model=BatchPredictionOut, summary="Classify several images")
async def predict_batch(
    request: Request, files: ImageFiles, inference: Inference, max_files: MaxBatchFiles
) -> BatchPredictionOut:
    if len(files) > max_files:
        raise TooManyFiles(f"{len(files)} files sent; at most {max_files} per request")
    done = await inference.classify([await f.read() for f in files])
    request.state.images, request.state.batch_size = len(files), done.batch_size
    return BatchPredictionOut(predictions=[PredictionOut.of(p) for p in done.results])


async def _refuse_extra_files(request: Request) -> None:
    """FastAPI hands ``/predict`` the last of several ``file`` fields: the others would go
    unanswered, and the answer would read as if it were for the first."""
    sent = len((await request.form()).getlist("file"))  # the form FastAPI parsed (cached)
    if sent > 1:
        raise TooManyFiles(f"{sent} files sent; /predict takes one (send several to /predict/batch)")
