"""nixpkgs-python: grouped Python package sets for Nix that keep themselves up to date."""

from __future__ import annotations

__version__ = "0.1.0"
