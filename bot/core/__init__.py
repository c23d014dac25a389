"""The core: errors, the one subprocess helper, the nix and git helpers, atomic writes and the
repository lock.  Imports nothing of the bot's but :mod:`bot` (see ``tests/test_layout.py``)."""
