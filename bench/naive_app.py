"""The baseline ``bench_api.py`` compares against: what a tutorial writes.

FastAPI + eager PyTorch: each request decodes its image with torchvision transforms and runs
its own forward pass of batch 1, right inside the ``async`` endpoint (so it blocks the event
loop), with torch's default thread count. Same model file as the service. Needs torchvision.

    NAIVE_MODEL_PATH=.../model.pt uvicorn bench.naive_app:app --port 8001
"""

import io
import os
from pathlib import Path

import torch
from fastapi import FastAPI, File, UploadFile
from PIL import Image
from torchvision import transforms

from eurosat_service.adapters.model_file import load_model

model, card = load_model(Path(os.environ["NAIVE_MODEL_PATH"]))
model.eval()
transform = transforms.Compose([
    transforms.Resize((card.input_size, card.input_size)),
    transforms.ToTensor(),
    transforms.Normalize(card.normalization.mean, card.normalization.std),
])

app = FastAPI()


@app.get("/readyz")
async def readyz() -> dict:
    return {"status": "ready"}


@app.post("/predict")
async def predict(file: UploadFile = File(...)) -> dict:  # noqa: B008  (the tutorial idiom, on purpose)
    image = Image.open(io.BytesIO(await file.read())).convert("RGB")
    batch = transform(image).unsqueeze(0)
    with torch.no_grad():
        probabilities = torch.softmax(model(batch), dim=1)[0]
    best = int(probabilities.argmax())
    return {
        "label": card.class_names[best],
        "confidence": float(probabilities[best]),
        "probabilities": {name: float(p) for name, p in zip(card.class_names, probabilities)},
        "model_version": card.version,
    }
