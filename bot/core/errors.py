"""One small exception hierarchy; the CLI's error boundary maps it to a message and exit code.

Every error a user can cause or meet carries *what* went wrong, *where* (a file and line, a
URL, a package, a command) and *what to do*.  ``str(err)`` is the full message; nothing here
ever needs a traceback to be understood.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

#: the userinfo of a URL: up to the LAST "@" before the path (a password may hold "@")
_USERINFO = re.compile(r"(?<=://)[^\s/?#]*@")
#: user names and passwords of the configured URLs (and their encodings), longest first
_SECRETS: dict[str, tuple[str, ...]] = {"known": ()}
_SECRETS_LOCK = threading.Lock()
#: shorter values are not redacted outside URLs (they would blank out ordinary words)
MIN_SECRET = 4


def register_secrets(urls: Iterable[str]) -> None:
    """Remember the credentials of these URLs (index and proxy URLs as configured), so that
    :func:`without_credentials` removes them wherever they appear: also a password holding a
    character a URL parser would stop at (``/``), raw or percent-decoded."""
    found: set[str] = set()
    for url in urls:
        _, sep, rest = url.partition("://")
        userinfo = rest.rpartition("@")[0] if sep else ""
        if not userinfo:
            continue
        user, _, password = userinfo.partition(":")
        pair = f"{unquote(user)}:{unquote(password)}"
        found |= {userinfo, user, password, unquote(user), unquote(password), pair}
        found.add(base64.b64encode(pair.encode()).decode("ascii"))
    found = {s for s in found if len(s) >= MIN_SECRET}
    if not found:
        return
    with _SECRETS_LOCK:
        known = found | set(_SECRETS["known"])
        _SECRETS["known"] = tuple(sorted(known, key=lambda s: (-len(s), s)))


def without_credentials(text: str, *, userinfo: str = "") -> str:
    """``text`` with the user and password of every URL in it replaced by ``userinfo``
    (``https://me:token@host/simple/`` -> ``https://host/simple/``; git's messages keep a
    ``***@`` mark), and every credential :func:`register_secrets` knows replaced by ``***``."""
    for secret in _SECRETS["known"]:
        if secret in text:
            text = text.replace(secret, "***")
    return _USERINFO.sub(userinfo, text)


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


#: short alias used by bot.lock.index
IndexError_ = PackageIndexError


class MetadataError(BotError):
    """A distribution's metadata could not be obtained or parsed."""


class MalformedMetadataError(MetadataError):
    """A distribution's metadata was read but cannot be used as it is (a field PEP 440/508
    rejects, another name or version than its file's): the resolver skips that version, as
    pip and uv do, instead of failing the lock."""


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


class StoppedError(BotError):
    """A subprocess was stopped, or not started, because the work that wanted it ended
    (:class:`bot.core.proc.Children`).  Not a :class:`CommandError`: nothing failed, so no
    caller may remember it as a failure of the command."""


class NixError(CommandError):
    """A nix command failed."""


class CacheError(BotError):
    """Binary cache signing, pushing or verification failed."""


class GitError(BotError):
    """A git operation failed."""


@dataclass
class UpstreamChangedError(GitError):
    """A push was rejected and the remote branch had meanwhile changed more than the locks
    (``paths``: what it changed); the night's commits were made against the old tree."""

    paths: tuple[str, ...] = ()


class GitHubError(BotError):
    """The GitHub API refused or failed a request."""
