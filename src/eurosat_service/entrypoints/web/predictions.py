"""``POST /predict`` and ``POST /predict/batch``: multipart uploads in, predictions out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile

from eurosat_service.entrypoints.web.dependencies import Inference, container_of
from eurosat_service.entrypoints.web.errors import PREDICT_ERRORS
from eurosat_service.entrypoints.web.file_count import FileCountRoute, takes_files
from eurosat_service.entrypoints.web.schemas import BatchPredictionOut, PredictionOut

router = APIRouter(tags=["predictions"], responses=PREDICT_ERRORS, route_class=FileCountRoute)

ImageFile = Annotated[UploadFile, File(description="one image: JPEG, PNG, TIFF, WebP, ... (EuroSAT tiles are 64x64)")]
ImageFiles = Annotated[list[UploadFile], File(description="several images, answered in the same order")]


# One: FastAPI would hand the endpoint the last of several ``file`` fields, and the others would
# go unanswered while the answer read as if it were for the first.
@router.post("/predict", response_model=PredictionOut, summary="Classify one image")
@takes_files(lambda request: 1,
             lambda _: "more than one file sent; /predict takes one (send several to /predict/batch)")
async def predict(request: Request, file: ImageFile, inference: Inference) -> PredictionOut:
    done = await inference.classify([await file.read()])
    request.state.images, request.state.batch_size = 1, done.batch_size
    return PredictionOut.of(done.results[0])


@router.post("/predict/batch", response_model=BatchPredictionOut, summary="Classify several images")
@takes_files(lambda request: container_of(request).config.max_batch_files(),
             lambda allowed: f"more than {allowed} files sent; at most {allowed} per request")
async def predict_batch(request: Request, files: ImageFiles, inference: Inference) -> BatchPredictionOut:
    done = await inference.classify([await f.read() for f in files])
    request.state.images, request.state.batch_size = len(files), done.batch_size
    return BatchPredictionOut(predictions=[PredictionOut.of(p) for p in done.results])
