"""glTF node transforms."""

from __future__ import annotations

import numpy as np


def node_local(node) -> np.ndarray:  # noqa: ANN001 - a pygltflib.Node
    """The 4x4 local matrix of a glTF node (matrix, or T * R * S)."""
    if node.matrix is not None and len(node.matrix) == 16:
        return np.array(node.matrix, dtype=np.float64).reshape(4, 4).T
    m = np.eye(4)
    r = node.rotation or [0.0, 0.0, 0.0, 1.0]
    from avatar.rig.rotations import quat_to_matrix

    m[:3, :3] = quat_to_matrix(np.array(r, dtype=np.float64)) * np.array(node.scale or [1.0, 1.0, 1.0])[None]
    m[:3, 3] = node.translation or [0.0, 0.0, 0.0]
    return m
