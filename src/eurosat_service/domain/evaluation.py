"""Classification metrics computed from a confusion matrix, in plain Python."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict


class ClassMetrics(BaseModel):
    model_config = ConfigDict(frozen=True)

    precision: float
    recall: float
    f1: float
    support: int


class EvaluationReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    accuracy: float
    macro_f1: float
    num_images: int
    per_class: dict[str, ClassMetrics]
    class_names: tuple[str, ...]
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted class
    model_version: str = ""
    split: str = ""
    views: int = 1  # flips/rotations averaged per image (test-time augmentation, ``domain/views``)

    @classmethod
    def from_labels(
        cls,
        class_names: Sequence[str],
        true: Sequence[int],
        predicted: Sequence[int],
        **extra: str | int,
    ) -> EvaluationReport:
        if len(true) != len(predicted):
            raise ValueError("true and predicted labels differ in length")
        if not true:
            raise ValueError("cannot evaluate on zero images")
        n = len(class_names)
        matrix = [[0] * n for _ in range(n)]
        for t, p in zip(true, predicted):
            matrix[t][p] += 1
        per_class = {}
        for i, name in enumerate(class_names):
            tp = matrix[i][i]
            predicted_i = sum(matrix[r][i] for r in range(n))
            support = sum(matrix[i])
            precision = tp / predicted_i if predicted_i else 0.0
            recall = tp / support if support else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            per_class[name] = ClassMetrics(precision=precision, recall=recall, f1=f1, support=support)
        present = [m for m in per_class.values() if m.support]
        return cls(
            accuracy=sum(matrix[i][i] for i in range(n)) / len(true),
            macro_f1=sum(m.f1 for m in present) / len(present),
            num_images=len(true),
            per_class=per_class,
            class_names=tuple(class_names),
            confusion_matrix=matrix,
            **extra,
        )
