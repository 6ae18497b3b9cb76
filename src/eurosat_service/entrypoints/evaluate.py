"""``python -m eurosat_service.entrypoints.evaluate``: score a model artifact on every image of a
EuroSAT-layout folder (or EuroSAT.zip) and print the JSON report to stdout."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from eurosat_service.entrypoints import cli
from eurosat_service.entrypoints.container import build_container
from eurosat_service.service_layer.evaluation import evaluate_model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m eurosat_service.entrypoints.evaluate", description=__doc__)
    p.add_argument("--model-uri", help="a store folder, a model.pt, s3://bucket/prefix or "
                                       "s3://bucket/prefix/<version>/model.pt [EUROSAT_MODEL_URI]")
    p.add_argument("--data-dir", type=Path,
                   help="EuroSAT-layout folder, zip, or a folder holding EuroSAT.zip [EUROSAT_DATA_DIR]")
    p.add_argument("--output", type=Path, help="also write the JSON report here")
    p.add_argument("--confusion-png", type=Path, help="draw the confusion matrix to this PNG")
    p.add_argument("--per-image", action="store_true",
                   help="include each image's class probabilities (keyed by <Class>/<file>)")
    p.add_argument("--views", type=int, help="average each image's probabilities over this many flips/rotations "
                                             "(1, 2, 4, 8), as the API does with the same setting [EUROSAT_VIEWS]")
    p.add_argument("--split", choices=("train", "val", "test"),
                   help="only this part of the model's own split, drawn again from --data-dir with the card's "
                        "seed (refused unless it matches the card's sha256)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cli.setup_logging()
    flags = {"model_uri": args.model_uri, "data_dir": args.data_dir, "views": args.views}
    overrides = {k: v for k, v in flags.items() if v is not None}
    container = build_container(**overrides)  # --views 3 is refused here, by name, before anything loads
    model_file = container.model_file()
    trainer = container.trainer()
    trainer.show_progress = not args.no_progress
    result = evaluate_model(container.dataset(), trainer, model_file, per_image=args.per_image,
                            views=container.config.views(), part=args.split)
    output = {**result.report.model_dump(mode="json"), "model_uri": container.config.model_uri(),
              "model_file": str(model_file), "data_dir": str(container.config.data_dir())}
    if result.per_image is not None:
        output["per_image"] = result.per_image
    text = json.dumps(output, indent=2)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    if args.confusion_png:
        args.confusion_png.parent.mkdir(parents=True, exist_ok=True)
        container.confusion_matrix_renderer()(result.report, args.confusion_png)
    print(text)
    return 0


if __name__ == "__main__":
    cli.run(main)
