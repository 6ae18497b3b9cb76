"""The framework's floor ``bench_api.py`` measures: FastAPI receiving the upload and answering,
with no model at all.

``/predict`` takes the multipart ``file`` the FastAPI way (``UploadFile``), reads it, and answers
a fixed prediction of the service's shape (ten class probabilities). Its CPU per request is what
the web stack alone costs; added to the network's CPU per image, it bounds what any FastAPI
server of this model can reach on the same CPUs. Needs no torch.

    uvicorn bench.floor_app:app --port 8002
"""

from fastapi import FastAPI, File, UploadFile

from eurosat_service.domain.land_cover import EUROSAT_CLASSES as CLASSES  # plain Python, no torch

app = FastAPI()


@app.get("/readyz")
async def readyz() -> dict:
    return {"status": "ready"}


@app.post("/predict")
async def predict(file: UploadFile = File(...)) -> dict:  # noqa: B008  (as bench/naive_app.py)
    size = len(await file.read())
    return {
        "label": CLASSES[size % len(CLASSES)],
        "confidence": 0.1,
        "probabilities": dict.fromkeys(CLASSES, 0.1),
        "model_version": "none",
    }
