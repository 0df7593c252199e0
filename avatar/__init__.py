"""Expressive avatar engine: text in; emotional speech, face and body motion, and video out."""

import warnings

# pyworld 0.3.5 imports pkg_resources (hence the setuptools<81 pin); its deprecation notice is not ours to act on.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
