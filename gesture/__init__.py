"""Body motion: humanoid skeleton, rotations, BVH/glTF export, prosody, the procedural gesture teacher, checks.

Import the submodules directly (heavy ones import scipy/pygltflib lazily), e.g.
`from avatar.gesture.teacher import teacher_motion`, `from avatar.gesture.bvh import write_bvh`.
"""

from avatar.rig.skeleton import HUMANOID, UNITY_BONES, VRM_BONES, Skeleton, default_skeleton

__all__ = ["HUMANOID", "UNITY_BONES", "VRM_BONES", "Skeleton", "default_skeleton"]
