"""Generating a Nix expression for a requirements file (:mod:`bot.generate.command`, the
entry) and its fixed-output sources.  Imports only the lock stage, the model and the core."""
