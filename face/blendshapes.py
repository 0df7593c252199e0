"""ARKit blendshape indexing shared by the face modules: name -> column, and sparse tables -> [rows, 52]."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from avatar.types import ARKIT_BLENDSHAPES

#: Column of each ARKit blendshape in a [.., 52] array.
ARKIT_INDEX: dict[str, int] = {n: i for i, n in enumerate(ARKIT_BLENDSHAPES)}


def blendshape_matrix(rows: Sequence[str], table: Mapping[str, Mapping[str, float]]) -> np.ndarray:
    """A read-only [len(rows), 52] matrix from a sparse table {row: {blendshape: weight}}."""
    m = np.zeros((len(rows), len(ARKIT_BLENDSHAPES)), dtype=np.float64)
    for i, row in enumerate(rows):
        for name, w in table[row].items():
            m[i, ARKIT_INDEX[name]] = w
    m.setflags(write=False)
    return m
