"""The model: package sets, targets, overrides, interpreters, the nixpkgs pin and the layout of
locks on disk.  Imports only :mod:`bot.core`."""
