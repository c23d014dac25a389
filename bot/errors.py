"""One small exception hierarchy; the CLI's error boundary maps it to a message and exit code.

Every error a user can cause or meet carries *what* went wrong, *where* (a file and line, a
URL, a package, a command) and *what to do*.  ``str(err)`` is the full message; nothing here
ever needs a traceback to be understood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def without_credentials(text: str) -> str:
    """``text`` with the user and password of every URL in it removed
    (``https://me:token@host/simple/`` -> ``https://host/simple/``)."""
    return _USERINFO.sub("", text)


@dataclass
class BotError(Exception):
    """Base of every expected failure."""

    message: str
    where: str | None = None
    hint: str | None = None
    exit_code: int = 1

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return without_credentials(self._text())  # an index URL may carry a token

    def _text(self) -> str:
        """The full message: where and what, the details, then what to do."""
        text = f"{self.where}: {self.message}" if self.where else self.message
        text += self._details()
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def _details(self) -> str:
        return ""


class SetError(BotError):
    """A set definition is missing or invalid."""


class PackageIndexError(BotError):
    """The package index could not be read, or answered something unusable."""


#: short alias used by bot.index
IndexError_ = PackageIndexError


class MetadataError(BotError):
    """A distribution's metadata could not be obtained or parsed."""


@dataclass
class ResolutionError(BotError):
    """No set of versions satisfies the requirements."""

    causes: list[str] = field(default_factory=list)

    def _details(self) -> str:
        return "".join(f"\n  - {c}" for c in self.causes)


class LockError(BotError):
    """A lock file is invalid or could not be written."""


@dataclass
class CommandError(BotError):
    """An external command failed; carries the command and the tail of its output."""

    command: str = ""
    returncode: int | None = None
    stderr_tail: str = ""

    def _text(self) -> str:
        text = super()._text()
        if self.command:
            text += f"\n  command: {self.command}"
        if self.stderr_tail:
            tail = "\n".join("    " + line for line in self.stderr_tail.splitlines())
            text += f"\n  output (last lines):\n{tail}"
        return text


class NixError(CommandError):
    """A nix command failed."""


class BuildError(NixError):
    """A set failed to build; ``package`` names the failing derivation when known."""


class CacheError(BotError):
    """Binary cache signing, pushing or verification failed."""


class GitError(BotError):
    """A git operation failed."""


class GitHubError(BotError):
    """The GitHub API refused or failed a request."""
