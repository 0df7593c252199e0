"""Moved to `avatar.rig.skeleton` (the rig is a base package now); this name stays for a while for code written
before the move and warns once."""

import warnings

from avatar.rig.skeleton import *  # noqa: F403 - the old module's public names

warnings.warn("avatar.gesture.skeleton moved to avatar.rig.skeleton", DeprecationWarning, stacklevel=2)
