"""Locking a set: the command (:mod:`bot.lock.command`, the entry), the lock document, its
memo, the resolver, its provider and the package-index client (:mod:`bot.lock.index`).
Imports only the model and the core."""
