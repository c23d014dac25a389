"""The fake GitHub REST API, the one fake boundary (DESIGN.md): a stateful REST server on
loopback that PyGithub talks to through ``Github(base_url=fake_github.base_url)``.  It
implements only the endpoints bot/nightly/github.py uses, checks request bodies against the
shapes GitHub's OpenAPI description publishes for them (required fields, types, enums;
unknown fields are refused too, which is stricter than GitHub, so a misspelt field fails a
test instead of being silently ignored), and records every request.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

_STR, _INT, _BOOL, _NULL, _LIST, _OBJ = "string", "integer", "boolean", "null", "array", "object"

# (method, route) -> (required fields, {field: (allowed JSON types, enum or None)})
_FieldShape = tuple[set[str], set[Any] | None]
_GITHUB_BODIES: dict[tuple[str, str], tuple[set[str], dict[str, _FieldShape]]] = {
    ("POST", "pulls"): (
        {"head", "base"},
        {
            "title": ({_STR}, None),
            "head": ({_STR}, None),
            "head_repo": ({_STR}, None),
            "base": ({_STR}, None),
            "body": ({_STR}, None),
            "maintainer_can_modify": ({_BOOL}, None),
            "draft": ({_BOOL}, None),
            "issue": ({_INT}, None),
        },
    ),
    ("PATCH", "pull"): (
        set(),
        {
            "title": ({_STR}, None),
            "body": ({_STR}, None),
            "state": ({_STR}, {"open", "closed"}),
            "base": ({_STR}, None),
            "maintainer_can_modify": ({_BOOL}, None),
        },
    ),
    ("POST", "issues"): (
        {"title"},
        {
            "title": ({_STR, _INT}, None),
            "body": ({_STR}, None),
            "assignee": ({_STR, _NULL}, None),
            "milestone": ({_STR, _INT, _NULL}, None),
            "labels": ({_LIST}, None),
            "assignees": ({_LIST}, None),
            "type": ({_STR, _NULL}, None),
        },
    ),
    ("PATCH", "issue"): (
        set(),
        {
            "title": ({_STR, _INT, _NULL}, None),
            "body": ({_STR, _NULL}, None),
            "assignee": ({_STR, _NULL}, None),
            "state": ({_STR}, {"open", "closed"}),
            "state_reason": (
                {_STR, _NULL},
                {"completed", "not_planned", "duplicate", "reopened", None},
            ),
            "milestone": ({_STR, _INT, _NULL}, None),
            "labels": ({_LIST}, None),
            "assignees": ({_LIST}, None),
            "type": ({_STR, _NULL}, None),
        },
    ),
    ("POST", "comments"): ({"body"}, {"body": ({_STR}, None)}),
    ("POST", "statuses"): (
        {"state"},
        {
            "state": ({_STR}, {"error", "failure", "pending", "success"}),
            "target_url": ({_STR, _NULL}, None),
            "description": ({_STR, _NULL}, None),
            "context": ({_STR}, None),
        },
    ),
    ("POST", "dispatches"): ({"ref"}, {"ref": ({_STR}, None), "inputs": ({_OBJ}, None)}),
}


def _json_type(value: Any) -> str:
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return _BOOL
    if isinstance(value, int):
        return _INT
    if isinstance(value, str):
        return _STR
    if isinstance(value, list):
        return _LIST
    return _OBJ if isinstance(value, dict) else "other"


def _body_errors(key: tuple[str, str], body: Any) -> list[dict[str, str]]:
    """Validation errors in GitHub's shape (``resource``/``field``/``code``)."""
    if not isinstance(body, dict):
        return [{"resource": key[1], "field": "", "code": "invalid"}]
    required, props = _GITHUB_BODIES[key]
    missing = sorted(required - body.keys())
    errors = [{"resource": key[1], "field": f, "code": "missing_field"} for f in missing]
    items = {"labels": (str, dict), "assignees": (str,)}
    for name, value in body.items():
        if name not in props:
            errors.append({"resource": key[1], "field": name, "code": "unexpected_field"})
            continue
        types, enum = props[name]
        bad_type = _json_type(value) not in types or (enum is not None and value not in enum)
        bad_item = name in items and not all(isinstance(x, items[name]) for x in value or [])
        if bad_type or bad_item:
            errors.append({"resource": key[1], "field": name, "code": "invalid"})
    return errors


@dataclass
class FakeRequest:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorized: bool


@dataclass
class FakeGitHub:
    """State of the fake: repositories, pull requests, issues (+labels, comments), statuses."""

    base_url: str = ""
    token: str = "ghp_fake-test-token"
    repos: dict[str, dict[str, Any]] = field(default_factory=dict)
    pulls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    issues: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: workflow_dispatch calls: repository -> [{"workflow", "ref", "inputs"}]
    dispatches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[FakeRequest] = field(default_factory=list)
    fail_status: int = 502
    #: the bare repository GitHub hosts: when set, a commit it lacks is unknown (422), as
    #: on GitHub for a sha that was never pushed; when None every sha is known
    git_dir: Path | None = None
    _failures: int = 0
    _numbers: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_repo(self, full_name: str, default_branch: str = "main") -> None:
        """Make ``owner/name`` exist."""
        owner, name = full_name.split("/")
        self.repos[full_name] = {
            "id": len(self.repos) + 1,
            "name": name,
            "full_name": full_name,
            "owner": {"login": owner, "type": "Organization"},
            "default_branch": default_branch,
            "url": f"{self.base_url}/repos/{full_name}",
            "html_url": f"https://github.invalid/{full_name}",
        }
        self.pulls.setdefault(full_name, [])
        self.issues.setdefault(full_name, [])

    def fail_next(self, count: int, status: int = 502) -> None:
        """Answer the next ``count`` requests with ``status`` (a 5xx) before any work."""
        self._failures, self.fail_status = count, status

    def writes(self) -> list[FakeRequest]:
        """The requests that were not GETs."""
        return [r for r in self.requests if r.method != "GET"]

    def has_commit(self, sha: str) -> bool:
        """Whether the hosted repository has ``sha`` (always, without ``git_dir``)."""
        if self.git_dir is None:
            return True
        found = subprocess.run(
            ["git", "cat-file", "-e", f"{sha}^{{commit}}"],
            cwd=self.git_dir,
            capture_output=True,
            check=False,
        )
        return found.returncode == 0

    def next_number(self, full_name: str) -> int:
        self._numbers[full_name] = self._numbers.get(full_name, 0) + 1
        return self._numbers[full_name]


_GH_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p), name)
    for m, p, name in [
        ("GET", r"^/repos/([^/]+/[^/]+)$", "repo"),
        ("GET", r"^/repos/([^/]+/[^/]+)/pulls$", "list_pulls"),
        ("POST", r"^/repos/([^/]+/[^/]+)/pulls$", "create_pull"),
        ("GET", r"^/repos/([^/]+/[^/]+)/pulls/(\d+)$", "get_pull"),
        ("PATCH", r"^/repos/([^/]+/[^/]+)/pulls/(\d+)$", "edit_pull"),
        ("GET", r"^/repos/([^/]+/[^/]+)/issues$", "list_issues"),
        ("POST", r"^/repos/([^/]+/[^/]+)/issues$", "create_issue"),
        ("GET", r"^/repos/([^/]+/[^/]+)/issues/(\d+)$", "get_issue"),
        ("PATCH", r"^/repos/([^/]+/[^/]+)/issues/(\d+)$", "edit_issue"),
        ("GET", r"^/repos/([^/]+/[^/]+)/issues/(\d+)/comments$", "list_comments"),
        ("POST", r"^/repos/([^/]+/[^/]+)/issues/(\d+)/comments$", "create_comment"),
        ("GET", r"^/repos/([^/]+/[^/]+)/commits/([0-9a-fA-F]{7,40})$", "get_commit"),
        ("POST", r"^/repos/([^/]+/[^/]+)/statuses/([0-9a-fA-F]{7,40})$", "create_status"),
        ("POST", r"^/repos/([^/]+/[^/]+)/actions/workflows/([^/]+)/dispatches$", "dispatch"),
    ]
]

_Reply = tuple[int, Any]


class _FakeGitHubApp:
    """Request handling, separate from the HTTP plumbing."""

    def __init__(self, state: FakeGitHub) -> None:
        self.s = state

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> _Reply:
        for m, pattern, name in _GH_ROUTES:
            match = pattern.match(path)
            if match and m == method:
                full = match.group(1)
                if full not in self.s.repos:
                    return 404, {"message": "Not Found"}
                handler: Callable[..., _Reply] = getattr(self, name)
                return handler(full, query, body, *match.groups()[1:])
        return 404, {"message": "Not Found"}

    def _invalid(self, key: tuple[str, str], body: Any) -> _Reply | None:
        errors = _body_errors(key, body)
        return (422, {"message": "Validation Failed", "errors": errors}) if errors else None

    def _issue_view(self, full: str, item: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in item.items() if k not in {"comments_list", "pr"}}
        view["comments"] = len(item["comments_list"])
        view["url"] = f"{self.s.base_url}/repos/{full}/issues/{item['number']}"
        if item.get("pr"):
            view["pull_request"] = {"url": f"{self.s.base_url}/repos/{full}/pulls/{item['number']}"}
        return view

    def _pull_view(self, full: str, pr: dict[str, Any]) -> dict[str, Any]:
        return {
            **pr,
            "url": f"{self.s.base_url}/repos/{full}/pulls/{pr['number']}",
            "issue_url": f"{self.s.base_url}/repos/{full}/issues/{pr['number']}",
        }

    def repo(self, full: str, query: dict[str, str], body: Any) -> _Reply:
        return 200, self.s.repos[full]

    def list_pulls(self, full: str, query: dict[str, str], body: Any) -> _Reply:
        state = query.get("state", "open")
        out = [
            self._pull_view(full, pr)
            for pr in self.s.pulls[full]
            if state in ("all", pr["state"])
            and ("head" not in query or query["head"] in (pr["head"]["label"], pr["head"]["ref"]))
            and ("base" not in query or query["base"] == pr["base"]["ref"])
        ]
        return 200, out

    def create_pull(self, full: str, query: dict[str, str], body: Any) -> _Reply:
        if bad := self._invalid(("POST", "pulls"), body):
            return bad
        owner = full.split("/", maxsplit=1)[0]
        head = body["head"].split(":")[-1]
        if any(p["head"]["ref"] == head and p["state"] == "open" for p in self.s.pulls[full]):
            message = f"A pull request already exists for {owner}:{head}."
            return 422, {"message": "Validation Failed", "errors": [{"message": message}]}
        number = self.s.next_number(full)
        pr = {
            "number": number,
            "state": "open",
            "title": body.get("title", ""),
            "body": body.get("body"),
            "head": {"ref": head, "label": f"{owner}:{head}", "repo": self.s.repos[full]},
            "base": {"ref": body["base"], "label": f"{owner}:{body['base']}"},
            "html_url": f"https://github.invalid/{full}/pull/{number}",
            "draft": body.get("draft", False),
        }
        self.s.pulls[full].append(pr)
        self.s.issues[full].append(
            {
                "number": number,
                "title": pr["title"],
                "body": pr["body"],
                "state": "open",
                "labels": [],
                "comments_list": [],
                "pr": True,
                "html_url": pr["html_url"],
            }
        )
        return 201, self._pull_view(full, pr)

    def _find(self, items: list[dict[str, Any]], number: str) -> dict[str, Any] | None:
        return next((i for i in items if i["number"] == int(number)), None)

    def get_pull(self, full: str, query: dict[str, str], body: Any, number: str) -> _Reply:
        pr = self._find(self.s.pulls[full], number)
        return (200, self._pull_view(full, pr)) if pr else (404, {"message": "Not Found"})

    def edit_pull(self, full: str, query: dict[str, str], body: Any, number: str) -> _Reply:
        pr = self._find(self.s.pulls[full], number)
        if pr is None:
            return 404, {"message": "Not Found"}
        if bad := self._invalid(("PATCH", "pull"), body):
            return bad
        issue = self._find(self.s.issues[full], number)  # a pull request is an issue too
        for key in ("title", "body", "state"):
            if key in body:
                pr[key] = body[key]
                if issue is not None:
                    issue[key] = body[key]
        if "base" in body:
            owner = full.split("/", maxsplit=1)[0]
            pr["base"] = {"ref": body["base"], "label": f"{owner}:{body['base']}"}
        return 200, self._pull_view(full, pr)

    def list_issues(self, full: str, query: dict[str, str], body: Any) -> _Reply:
        state = query.get("state", "open")
        wanted = {x for x in query.get("labels", "").split(",") if x}
        out = [
            self._issue_view(full, i)
            for i in self.s.issues[full]
            if state in ("all", i["state"]) and wanted <= {label["name"] for label in i["labels"]}
        ]
        return 200, out

    def create_issue(self, full: str, query: dict[str, str], body: Any) -> _Reply:
        if bad := self._invalid(("POST", "issues"), body):
            return bad
        number = self.s.next_number(full)
        names = [x if isinstance(x, str) else x.get("name", "") for x in body.get("labels", [])]
        issue = {
            "number": number,
            "title": str(body["title"]),
            "body": body.get("body"),
            "state": "open",
            "state_reason": None,
            "labels": [{"name": n, "color": "ededed"} for n in names],
            "comments_list": [],
            "html_url": f"https://github.invalid/{full}/issues/{number}",
        }
        self.s.issues[full].append(issue)
        return 201, self._issue_view(full, issue)

    def get_issue(self, full: str, query: dict[str, str], body: Any, number: str) -> _Reply:
        issue = self._find(self.s.issues[full], number)
        return (200, self._issue_view(full, issue)) if issue else (404, {"message": "Not Found"})

    def edit_issue(self, full: str, query: dict[str, str], body: Any, number: str) -> _Reply:
        issue = self._find(self.s.issues[full], number)
        if issue is None:
            return 404, {"message": "Not Found"}
        if bad := self._invalid(("PATCH", "issue"), body):
            return bad
        for key in ("title", "body", "state", "state_reason"):
            if key in body:
                issue[key] = body[key]
        if "labels" in body:
            names = [n if isinstance(n, str) else n["name"] for n in body["labels"]]
            issue["labels"] = [{"name": n} for n in names]
        return 200, self._issue_view(full, issue)

    def list_comments(self, full: str, query: dict[str, str], body: Any, number: str) -> _Reply:
        issue = self._find(self.s.issues[full], number)
        return (200, issue["comments_list"]) if issue else (404, {"message": "Not Found"})

    def create_comment(self, full: str, query: dict[str, str], body: Any, number: str) -> _Reply:
        issue = self._find(self.s.issues[full], number)
        if issue is None:
            return 404, {"message": "Not Found"}
        if bad := self._invalid(("POST", "comments"), body):
            return bad
        comment = {"id": len(issue["comments_list"]) + 1, "body": body["body"]}
        issue["comments_list"].append(comment)
        return 201, comment

    def _unknown(self, sha: str) -> _Reply | None:
        if self.s.has_commit(sha):
            return None
        return 422, {"message": f"No commit found for SHA: {sha}"}

    def get_commit(self, full: str, query: dict[str, str], body: Any, sha: str) -> _Reply:
        if unknown := self._unknown(sha):
            return unknown
        return 200, {"sha": sha, "url": f"{self.s.base_url}/repos/{full}/commits/{sha}"}

    def create_status(self, full: str, query: dict[str, str], body: Any, sha: str) -> _Reply:
        if bad := self._invalid(("POST", "statuses"), body):
            return bad
        if unknown := self._unknown(sha):
            return unknown
        status = {"id": sum(map(len, self.s.statuses.values())) + 1, "context": "default", **body}
        self.s.statuses.setdefault(sha, []).append(status)
        return 201, status

    def dispatch(self, full: str, query: dict[str, str], body: Any, workflow: str) -> _Reply:
        if bad := self._invalid(("POST", "dispatches"), body):
            return bad
        call = {"workflow": workflow, "ref": body["ref"], "inputs": body.get("inputs", {})}
        self.s.dispatches.setdefault(full, []).append(call)
        return 204, None  # GitHub answers No Content


def _fake_github_handler(state: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    app = _FakeGitHubApp(state)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            auth = self.headers.get("Authorization", "")
            authorized = auth in (f"token {state.token}", f"Bearer {state.token}")
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            with state.lock:
                state.requests.append(FakeRequest(self.command, path, query, body, authorized))
                if state._failures > 0:
                    state._failures -= 1
                    status, reply = state.fail_status, {"message": "Server Error"}
                elif not authorized:
                    status, reply = 401, {"message": "Bad credentials"}
                elif raw and isinstance(body, str):
                    status, reply = 400, {"message": "Problems parsing JSON"}
                else:
                    status, reply = app.handle(self.command, path, query, body)
            if reply is None:  # 204: no body at all
                self.send_response(status)
                self.end_headers()
                return
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve  # noqa: N815 (http.server API)

    return Handler


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    """A stateful fake GitHub REST API on a free 127.0.0.1 port.

    It knows one repository, ``nixpkgs-python/nixpkgs-python``; ``add_repo`` adds more.

    Use ``base_url``/``token`` with PyGithub; inspect ``pulls``/``issues``/``statuses`` and
    ``requests``; ``fail_next(n)`` makes the next ``n`` requests answer 502.
    """
    state = FakeGitHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _fake_github_handler(state))
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    state.add_repo("nixpkgs-python/nixpkgs-python")
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-github", daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
