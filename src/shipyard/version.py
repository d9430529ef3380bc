"""The version of Shipyard, in the core floor so that any module can name it without importing the package."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
