"""Test-time augmentation as a choice of views: which flips/rotations of a tile are averaged.

An overhead tile has no "up": its eight flips/rotations are equally valid inputs, and averaging
a network's class probabilities over several of them evens out the tiles whose single answer
depends on orientation, at the cost of one forward pass per view. The sets are fixed here so that
serving (``EUROSAT_VIEWS``) and evaluation (``--views``) average exactly the same views.
Transform ``t`` is ``t % 4`` quarter turns, then a horizontal flip when ``t >= 4``.
"""

from __future__ import annotations

from collections.abc import Mapping

VIEW_SETS: Mapping[int, tuple[int, ...]] = {
    1: (0,),  # the tile as it is
    2: (0, 4),  # and its mirror image (on validation it beat the half turn: docs/model.md)
    4: (0, 1, 2, 3),  # the four rotations
    8: tuple(range(8)),  # every flip and rotation
}


def view_transforms(views: int) -> tuple[int, ...]:
    """The transforms averaged for ``views`` views; a clear error for any other count."""
    try:
        return VIEW_SETS[views]
    except KeyError:
        raise ValueError(f"views must be one of {', '.join(map(str, VIEW_SETS))}, not {views}") from None
