"""Building a set with Nix (:mod:`bot.build.command`, the entry) and the suggestions a failed
build's log gives.  Imports only the lock stage, the model and the core."""
