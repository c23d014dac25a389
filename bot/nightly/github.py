"""Pull requests, failure issues and commit statuses on GitHub, with PyGithub.

Only used when a token and a repository (``owner/name``) are configured.  Every PyGithub
exception is turned into a :class:`bot.core.errors.GitHubError` that says what failed and what to
do; the token never appears in a message, a log line or a ``repr``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, ParamSpec, TypeVar

import requests
from github import Auth, Github, GithubException
from github.GithubObject import NotSet, Opt
from github.Issue import Issue

from bot.core.errors import GitHubError
from bot.model.locks import python_label
from bot.nightly import markdown as md

log = logging.getLogger(__name__)

FAILURE_LABEL = "set-failure"
STATUS_CONTEXT = "nixpkgs-python/{set_name}"
CI_WORKFLOW = "ci.yml"  #: dispatched on the bot's pull-request branches (see dispatch_workflow)
TOKEN_HINT = "check NIXPKGS_PYTHON_GITHUB_TOKEN / GITHUB_TOKEN"  # noqa: S105 (names, not a secret)
BODY_LIMIT = 60_000  # GitHub refuses bodies over 65536 characters
DESCRIPTION_LIMIT = 140  # commit status descriptions are cut by GitHub at 140
StatusState = Literal["error", "failure", "pending", "success"]
_STATES = ("error", "failure", "pending", "success")
_TITLE = re.compile(r"^Set (?P<set>\S+) fails to build(?: \((?P<python>[^)]*)\))?$")

T = TypeVar("T")
P = ParamSpec("P")


def _label(python: str) -> str:
    return python if python.startswith("py") else python_label(python)


def failure_title(set_name: str, python: str) -> str:
    """``Set pytest fails to build (py312)``; ``python`` may be ``3.12`` or ``py312``."""
    return f"Set {set_name} fails to build ({_label(python)})"


def _fence(text: str) -> str:
    """A code fence longer than any backtick run inside ``text``."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def failure_body(
    set_name: str, python: str, package: str | None, log_tail: str, run_url: str | None
) -> str:
    """The issue body or comment describing one failed build."""
    tail = log_tail[-BODY_LIMIT:]
    fence = _fence(tail)
    lines = [
        f"The nightly build of set `{set_name}` ({_label(python)}) failed.",
        "",
        f"Failing package: {md.code(package)}" if package else "Failing package: unknown",
    ]
    if run_url:
        lines.append(f"Run: {md.safe_url(run_url) or md.text(run_url)}")
    lines += [
        "",
        "<details><summary>Build log (last lines)</summary>",
        "",
        fence,
        tail.rstrip(),
        fence,
        "",
        "</details>",
        "",
        "The set keeps its previous lock until it builds again; this issue is closed then.",
    ]
    return "\n".join(lines) + "\n"


class GitHubClient:
    """One repository on GitHub (or a GitHub Enterprise / test server at ``base_url``)."""

    def __init__(
        self,
        token: str,
        repo: str,
        base_url: str = "https://api.github.com",
        throttle: bool = True,
        timeout: int = 30,
    ) -> None:
        """Connect and read the repository (one GET); raises :class:`GitHubError` if refused.

        ``throttle=False`` switches off PyGithub's pauses between requests and its retries
        (for tests against a loopback server).
        """
        if not token:
            raise GitHubError("no GitHub token given", hint=TOKEN_HINT)
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
            raise GitHubError(
                f"{repo!r} is not a repository name", hint="give it as owner/name, e.g. org/repo"
            )
        self.repo_name = repo
        self.base_url = base_url.rstrip("/")
        options: dict[str, Any] = {}
        if not throttle:
            options = {"seconds_between_requests": 0, "seconds_between_writes": 0, "retry": None}
        self._github = Github(
            auth=Auth.Token(token), base_url=self.base_url, timeout=timeout, **options
        )
        self._repo = self._call(f"read repository {repo}", lambda: self._github.get_repo(repo))
        self.owner = repo.split("/", 1)[0]

    def __repr__(self) -> str:
        return f"GitHubClient(repo={self.repo_name!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        """Release the HTTP connection."""
        self._github.close()

    def _call(self, what: str, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one PyGithub operation; map its failures to :class:`GitHubError`."""
        try:
            return func(*args, **kwargs)
        except GithubException as exc:
            raise self._error(what, exc) from exc
        except requests.RequestException as exc:
            raise GitHubError(
                f"{what}: cannot reach {self.base_url} ({type(exc).__name__})",
                where=self.repo_name,
                hint="check the network; the run's locks are committed, re-run to report",
            ) from exc

    def _error(self, what: str, exc: GithubException) -> GitHubError:
        status = exc.status
        data = exc.data if isinstance(exc.data, dict) else {}
        message = str(data.get("message") or "")
        details = "; ".join(
            str(e.get("message") or f"{e.get('field')} {e.get('code')}")
            for e in data.get("errors", [])
            if isinstance(e, dict)
        )
        if status == 401:
            return GitHubError(
                f"{what}: GitHub rejected the token (401 {message or 'Bad credentials'})",
                where=self.repo_name,
                hint=f"{TOKEN_HINT}: it may be expired, revoked or mistyped",
            )
        if status == 403:
            return GitHubError(
                f"{what}: forbidden (403 {message})",
                where=self.repo_name,
                hint="the token lacks a permission (contents, pull-requests, issues, statuses, "
                "actions: write) or the rate limit is exhausted; " + TOKEN_HINT,
            )
        if status == 404:
            return GitHubError(
                f"{what}: not found (404)",
                where=self.repo_name,
                hint=f"check the repository name; a token that cannot see it gets 404 too; "
                f"{TOKEN_HINT}",
            )
        if status == 422:
            reason = f"{message}: {details}" if details else message
            return GitHubError(
                f"{what}: GitHub refused the request (422 {reason})", where=self.repo_name
            )
        if status >= 500:
            return GitHubError(
                f"{what}: GitHub failed ({status} {message})",
                where=self.repo_name,
                hint="a GitHub outage or hiccup; retry later (re-running the report is safe: "
                "pull requests and issues are updated, not duplicated)",
            )
        return GitHubError(f"{what}: GitHub answered {status} {message}", where=self.repo_name)

    # --- pull requests ----------------------------------------------------------------------

    def upsert_pull_request(self, head_branch: str, base: str, title: str, body: str) -> int:
        """Open a pull request from ``head_branch`` into ``base``, or update the open one.

        Returns its number.  One pull request per night: if one is already open for that head
        branch, its title and body are replaced instead of creating a duplicate.
        """
        what = f"pull request {head_branch} -> {base}"
        body = body[:BODY_LIMIT]
        existing = self._call(
            what,
            lambda: list(
                self._repo.get_pulls(state="open", head=f"{self.owner}:{head_branch}", base=base)
            ),
        )
        if existing:
            pull = existing[0]
            self._call(what, lambda: pull.edit(title=title, body=body))
            log.info("updated pull request #%d", pull.number)
            return int(pull.number)
        created = self._call(
            what,
            lambda: self._repo.create_pull(base=base, head=head_branch, title=title, body=body),
        )
        log.info("opened pull request #%d", created.number)
        return int(created.number)

    def dispatch_workflow(self, ref: str, workflow: str = CI_WORKFLOW) -> None:
        """Run the workflow file ``workflow`` (``ci.yml``; it must accept ``workflow_dispatch``)
        on the branch ``ref``.

        A pull request opened with the workflow's ``GITHUB_TOKEN`` starts no workflow run
        (GitHub's rule against loops); a ``workflow_dispatch`` is the exception, so the bot
        asks for the checks of its own pull requests this way (the token needs
        ``actions: write``)."""
        what = f"run workflow {workflow} on {ref}"
        url = f"{self._repo.url}/actions/workflows/{workflow}/dispatches"
        self._call(
            what,
            lambda: self._github.requester.requestJsonAndCheck("POST", url, input={"ref": ref}),
        )
        log.info("started %s on %s", workflow, ref)

    def close_superseded(
        self, number: int, base: str, prefix: str = "nightly/"
    ) -> list[tuple[int, str]]:
        """Close the other open pull requests into ``base`` from ``<prefix>*`` branches, each
        with a comment pointing at #``number`` (tonight's, which carries their commits too);
        return their numbers and head branches (for the caller to delete)."""
        what = f"close the pull requests #{number} supersedes"
        pulls = self._call(what, lambda: list(self._repo.get_pulls(state="open", base=base)))
        closed: list[tuple[int, str]] = []
        for pull in pulls:
            head = str(pull.head.ref)
            if pull.number == number or not head.startswith(prefix):
                continue
            if pull.head.repo is not None and pull.head.repo.full_name != self.repo_name:
                continue  # a fork's branch of the same name is not the bot's
            one = f"close pull request #{pull.number}"
            self._call(one, pull.create_issue_comment, f"Superseded by #{number}; closing.")
            self._call(one, pull.edit, state="closed")
            log.info("closed pull request #%d (superseded by #%d)", pull.number, number)
            closed.append((int(pull.number), head))
        return closed

    # --- failure issues ---------------------------------------------------------------------

    def _open_failure_issues(self) -> list[Issue]:
        issues = self._call(
            "list set-failure issues",
            lambda: list(self._repo.get_issues(state="open", labels=[FAILURE_LABEL])),
        )
        # the issues endpoint lists pull requests too
        return [i for i in issues if i.pull_request is None]

    def report_failure(
        self,
        set_name: str,
        python: str,
        package: str | None,
        log_tail: str,
        run_url: str | None = None,
    ) -> int:
        """Open (or comment on the open) issue for a set that failed to build; return its number.

        One issue per set and Python version, labelled ``set-failure`` and titled
        ``Set <name> fails to build (pyXY)``; a repeated failure adds a comment with the new
        log and replaces the body, so the issue always shows the latest failure.
        """
        title = failure_title(set_name, python)
        body = failure_body(set_name, python, package, log_tail, run_url)
        what = f"issue {title!r}"
        for issue in self._open_failure_issues():
            if issue.title == title:
                self._call(what, issue.create_comment, body)
                self._call(what, issue.edit, body=body)
                return int(issue.number)
        created = self._call(
            what, lambda: self._repo.create_issue(title=title, body=body, labels=[FAILURE_LABEL])
        )
        return int(created.number)

    def close_fixed(
        self, set_names_that_built: Iterable[str], run_url: str | None = None
    ) -> list[int]:
        """Close the open failure issues of sets that built this time; return their numbers."""
        built = set(set_names_that_built)
        closed: list[int] = []
        for issue in self._open_failure_issues():
            match = _TITLE.match(issue.title)
            if not match or match["set"] not in built:
                continue
            note = f"Set `{match['set']}` builds again" + (f" ({run_url})" if run_url else "")
            what = f"close issue #{issue.number}"
            self._call(what, issue.create_comment, note + "; closing.")
            self._call(what, issue.edit, state="closed", state_reason="completed")
            closed.append(int(issue.number))
        return closed

    # --- commit statuses --------------------------------------------------------------------

    def set_status(
        self,
        sha: str,
        set_name: str,
        state: StatusState,
        description: str,
        target_url: str | None = None,
    ) -> None:
        """Set the commit status ``nixpkgs-python/<set>`` on ``sha``."""
        if state not in _STATES:
            raise GitHubError(f"invalid commit status {state!r}", hint=f"use one of {_STATES}")
        what = f"status {STATUS_CONTEXT.format(set_name=set_name)} on {sha[:12]}"
        commit = self._call(what, lambda: self._repo.get_commit(sha))
        url: Opt[str] = target_url if target_url is not None else NotSet
        self._call(
            what,
            lambda: commit.create_status(
                state=state,
                target_url=url,
                description=description[:DESCRIPTION_LIMIT],
                context=STATUS_CONTEXT.format(set_name=set_name),
            ),
        )


def client_from_env(env: Mapping[str, str], *, throttle: bool = True) -> GitHubClient | None:
    """A client configured from the environment, or ``None`` when no token or repository is set.

    Token: ``NIXPKGS_PYTHON_GITHUB_TOKEN``, else ``GITHUB_TOKEN``.  Repository:
    ``NIXPKGS_PYTHON_GITHUB_REPOSITORY``, else ``GITHUB_REPOSITORY`` (set by GitHub Actions).
    API: ``GITHUB_API_URL`` (set by Actions, also on GitHub Enterprise), else api.github.com.
    """
    token = env.get("NIXPKGS_PYTHON_GITHUB_TOKEN") or env.get("GITHUB_TOKEN")
    repo = env.get("NIXPKGS_PYTHON_GITHUB_REPOSITORY") or env.get("GITHUB_REPOSITORY")
    if not token or not repo:
        return None
    base_url = env.get("GITHUB_API_URL") or "https://api.github.com"
    return GitHubClient(token, repo, base_url=base_url, throttle=throttle)
