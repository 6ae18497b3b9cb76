"""``python -m eurosat_service.entrypoints.evaluate``: score a model artifact on every image of a
EuroSAT-layout folder (or EuroSAT.zip) and print the JSON report to stdout."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from eurosat_service.adapters.writable_folder import unwritable_reason
from eurosat_service.domain.errors import EurosatError
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
    for flag, path in (("--output", args.output), ("--confusion-png", args.confusion_png)):
        _check_writable(flag, path)  # scoring a large folder takes minutes; refuse a bad path before it
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
    print(text, flush=True)  # first: should a file still fail (a disk filled since), the report is not lost
    try:
        if args.output:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(text + "\n")
        if args.confusion_png:
            args.confusion_png.parent.mkdir(parents=True, exist_ok=True)
            container.confusion_matrix_renderer()(result.report, args.confusion_png)
    except OSError as exc:
        raise EurosatError(f"writing {exc.filename or 'an output file'} failed ({exc.strerror or exc}); "
                           "the report was printed to stdout") from None
    return 0


def _check_writable(flag: str, path: Path | None) -> None:
    """Refuse now an output file that could not be written after scoring: a folder given as the file,
    a file in the way of its folder, a read-only folder or file."""
    if path is None:
        return
    if path.is_dir():
        raise EurosatError(f"{flag} {path} is a folder; give a file name inside it")
    if reason := unwritable_reason(path.parent):
        raise EurosatError(f"{flag} {path}: {reason}")
    if path.exists() and not os.access(path, os.W_OK):
        raise EurosatError(f"{flag} {path}: the file is read-only")


if __name__ == "__main__":
    cli.run(main)
