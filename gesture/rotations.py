"""Moved to `avatar.rig.rotations` (the rig is a base package now); this name stays for a while for code written
before the move and warns once."""

import warnings

from avatar.rig.rotations import *  # noqa: F403 - the old module's public names

warnings.warn("avatar.gesture.rotations moved to avatar.rig.rotations", DeprecationWarning, stacklevel=2)
