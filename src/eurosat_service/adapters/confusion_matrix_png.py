"""Draws the confusion matrix as a PNG with Pillow (no plotting library at run time)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from eurosat_service.domain.evaluation import EvaluationReport

CELL, LABEL = 56, 170


def render_confusion_matrix(report: EvaluationReport, path: Path) -> None:
    names, matrix = report.class_names, report.confusion_matrix
    n = len(names)
    size = LABEL + CELL * n + 20
    image = Image.new("RGB", (size, size + 30), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    draw.text((10, 8), f"accuracy {report.accuracy:.4f}  macro-F1 {report.macro_f1:.4f}  "
              f"({report.num_images} images; rows true, columns predicted)", fill="black", font=font)
    top = 30 + LABEL
    for i, name in enumerate(names):
        draw.text((6, top + i * CELL + CELL // 2 - 6), name, fill="black", font=font)
        column = Image.new("RGB", (LABEL - 10, 14), "white")
        ImageDraw.Draw(column).text((0, 0), name, fill="black", font=font)
        image.paste(column.rotate(90, expand=True), (LABEL + i * CELL + CELL // 2 - 7, 40))
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        for j, count in enumerate(row):
            share = count / total
            shade = int(255 * (1 - share))
            colour = (shade, shade, 255) if i == j else (255, shade, shade)
            box = (LABEL + j * CELL, top + i * CELL, LABEL + (j + 1) * CELL - 1, top + (i + 1) * CELL - 1)
            draw.rectangle(box, fill=colour, outline="grey")
            draw.text((box[0] + 6, box[1] + CELL // 2 - 6), str(count),
                      fill="white" if share > 0.6 else "black", font=font)
    image.save(path)
