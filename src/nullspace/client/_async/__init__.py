"""Exports `AsyncSandbox`."""

from .sandbox import AsyncSandbox

__all__ = ["AsyncSandbox"]
