"""Moved to `avatar.rig.kinematics` (the rig is a base package now); this name stays for a while for code written
before the move and warns once."""

import warnings

from avatar.rig.kinematics import *  # noqa: F403 - the old module's public names

warnings.warn("avatar.gesture.kinematics moved to avatar.rig.kinematics", DeprecationWarning, stacklevel=2)
