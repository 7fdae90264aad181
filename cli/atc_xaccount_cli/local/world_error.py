"""The world file's one error (its own module: world.py and the world's parts it delegates to,
such as nodeapi.py, both raise it without importing each other)."""

from __future__ import annotations


class WorldError(ValueError):
    """The world file is malformed; the message names the path inside it."""
