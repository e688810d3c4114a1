"""`digitlens serve`: a web page and an HTTP API on the reader.

Importing this package does no work and imports no FastAPI: `create_app` and `ServeConfig` load lazily.
"""
from __future__ import annotations

from typing import Any

__all__ = ["create_app", "ServeConfig"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from digitlens.server.app import create_app

        return create_app
    if name == "ServeConfig":
        from digitlens.server.limits import ServeConfig

        return ServeConfig
    raise AttributeError(f"module 'digitlens.server' has no attribute {name!r}")
