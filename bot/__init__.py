"""nixpkgs-python: grouped Python package sets for Nix that keep themselves up to date."""

from __future__ import annotations

__version__ = "0.1.0"

#: the Python minor versions a set may be locked for
SUPPORTED_PYTHONS: tuple[str, ...] = ("3.10", "3.11", "3.12", "3.13", "3.14")
