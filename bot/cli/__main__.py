"""``python -m bot.cli``."""

import sys

from bot.cli import entry

sys.exit(entry())
