"""The installed distribution's version, as ``agent_audio.__version__``."""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("agent_audio")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
