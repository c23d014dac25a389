"""bot.nightly.github against the fake GitHub REST server
(real HTTP on 127.0.0.1, real PyGithub)."""

from __future__ import annotations

import pytest

from bot.core.errors import GitHubError
from bot.nightly.github import GitHubClient, failure_body, failure_title
from tests.plugins.fake_github import FakeGitHub

REPO = "nixpkgs-python/nixpkgs-python"
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def client(fake_github: FakeGitHub) -> GitHubClient:
    return GitHubClient(fake_github.token, REPO, base_url=fake_github.base_url, throttle=False)


def test_connect_reads_the_repository(fake_github: FakeGitHub, client: GitHubClient) -> None:
    assert [(r.method, r.path) for r in fake_github.requests] == [("GET", f"/repos/{REPO}")]
    assert fake_github.requests[0].authorized
    assert "ghp_" not in repr(client)


def test_bad_token_gives_clear_error_without_the_token(fake_github: FakeGitHub) -> None:
    with pytest.raises(GitHubError) as info:
        GitHubClient("ghp_wrong-secret", REPO, base_url=fake_github.base_url, throttle=False)
    text = str(info.value)
    assert "GitHub rejected the token (401" in text
    assert "NIXPKGS_PYTHON_GITHUB_TOKEN / GITHUB_TOKEN" in text
    assert "ghp_wrong-secret" not in text
    assert not fake_github.requests[0].authorized


def test_unknown_repository(fake_github: FakeGitHub) -> None:
    with pytest.raises(GitHubError, match="not found"):
        GitHubClient(
            fake_github.token, "nobody/nothing", base_url=fake_github.base_url, throttle=False
        )


def test_bad_repository_name_and_missing_token(fake_github: FakeGitHub) -> None:
    with pytest.raises(GitHubError, match="owner/name"):
        GitHubClient(fake_github.token, "just-a-name", base_url=fake_github.base_url)
    with pytest.raises(GitHubError, match="no GitHub token"):
        GitHubClient("", REPO, base_url=fake_github.base_url)


def test_server_error_gives_retry_advice(fake_github: FakeGitHub, client: GitHubClient) -> None:
    fake_github.fail_next(1, status=503)
    with pytest.raises(GitHubError) as info:
        client.upsert_pull_request("nightly/2026-11-21", "main", "t", "b")
    assert "GitHub failed (503" in str(info.value)
    assert "retry later" in str(info.value)
    # the next call works again
    assert client.upsert_pull_request("nightly/2026-11-21", "main", "t", "b") == 1


def test_unreachable_server() -> None:
    with pytest.raises(GitHubError, match="cannot reach"):
        GitHubClient("t", REPO, base_url="http://127.0.0.1:9", throttle=False)


# --- pull requests --------------------------------------------------------------------------


def test_one_pull_request_per_night(fake_github: FakeGitHub, client: GitHubClient) -> None:
    first = client.upsert_pull_request("nightly/2026-11-21", "main", "Nightly 2026-11-21", "v1")
    again = client.upsert_pull_request("nightly/2026-11-21", "main", "Nightly 2026-11-21", "v2")
    assert first == again == 1
    pulls = fake_github.pulls[REPO]
    assert len(pulls) == 1
    assert pulls[0]["body"] == "v2"
    assert pulls[0]["head"]["label"] == "nixpkgs-python:nightly/2026-11-21"
    listing = [r for r in fake_github.requests if r.path == f"/repos/{REPO}/pulls"]
    assert listing[0].query == {
        "state": "open",
        "head": "nixpkgs-python:nightly/2026-11-21",
        "base": "main",
    }
    create = next(r for r in fake_github.requests if r.method == "POST")
    assert create.body == {
        "base": "main",
        "head": "nightly/2026-11-21",
        "title": "Nightly 2026-11-21",
        "body": "v1",
    }


def test_next_night_opens_a_new_pull_request(fake_github: FakeGitHub, client: GitHubClient) -> None:
    assert client.upsert_pull_request("nightly/2026-11-21", "main", "a", "b") == 1
    fake_github.pulls[REPO][0]["state"] = "closed"  # merged meanwhile
    assert client.upsert_pull_request("nightly/2026-11-21", "main", "a", "b") == 2
    assert client.upsert_pull_request("nightly/2026-11-22", "main", "a", "b") == 3


def test_close_superseded_closes_earlier_nights_only(
    fake_github: FakeGitHub, client: GitHubClient
) -> None:
    client.upsert_pull_request("nightly/2026-11-20", "main", "n20", "b")
    client.upsert_pull_request("feature/x", "main", "a maintainer's", "b")
    client.upsert_pull_request("nightly/2026-11-21", "main", "n21", "b")
    client.upsert_pull_request("nightly/2026-11-19", "release", "other base", "b")
    tonight = client.upsert_pull_request("nightly/2026-11-22", "main", "n22", "b")

    assert client.close_superseded(tonight, "main") == [
        (1, "nightly/2026-11-20"),
        (3, "nightly/2026-11-21"),
    ]
    state = {p["head"]["ref"]: p["state"] for p in fake_github.pulls[REPO]}
    assert state == {
        "nightly/2026-11-20": "closed",
        "feature/x": "open",
        "nightly/2026-11-21": "closed",
        "nightly/2026-11-19": "open",
        "nightly/2026-11-22": "open",
    }
    comments = {
        i["number"]: [c["body"] for c in i["comments_list"]] for i in fake_github.issues[REPO]
    }
    assert comments[1] == comments[3] == [f"Superseded by #{tonight}; closing."]
    assert comments[2] == comments[tonight] == []
    assert client.close_superseded(tonight, "main") == []  # nothing left to close


# --- failure issues -------------------------------------------------------------------------


def test_failure_issue_opened_once_then_commented(
    fake_github: FakeGitHub, client: GitHubClient
) -> None:
    n = client.report_failure("pytest", "3.12", "pluggy", "error: builder failed\n", "http://run/1")
    again = client.report_failure("pytest", "3.12", "pluggy", "error: again\n", "http://run/2")
    assert n == again
    issues = fake_github.issues[REPO]
    assert len(issues) == 1
    issue = issues[0]
    assert issue["title"] == "Set pytest fails to build (py312)"
    assert [label["name"] for label in issue["labels"]] == ["set-failure"]
    assert "error: again" in issue["body"]
    assert "http://run/2" in issue["body"]
    assert len(issue["comments_list"]) == 1
    assert "error: again" in issue["comments_list"][0]["body"]
    listing = [r for r in fake_github.requests if r.path == f"/repos/{REPO}/issues"]
    assert listing[0].query == {"state": "open", "labels": "set-failure"}


def test_failure_per_python_is_a_separate_issue(
    fake_github: FakeGitHub, client: GitHubClient
) -> None:
    a = client.report_failure("pytest", "3.12", "pluggy", "x")
    b = client.report_failure("pytest", "py313", None, "y")
    assert a != b
    assert [i["title"] for i in fake_github.issues[REPO]] == [
        "Set pytest fails to build (py312)",
        "Set pytest fails to build (py313)",
    ]


def test_close_fixed_closes_only_sets_that_built(
    fake_github: FakeGitHub, client: GitHubClient
) -> None:
    client.report_failure("pytest", "3.12", "pluggy", "x")
    client.report_failure("pytest", "3.13", "pluggy", "x")
    client.report_failure("numpy", "3.12", "numpy", "x")
    # an unrelated open pull request and a closed issue must be left alone
    client.upsert_pull_request("nightly/2026-11-21", "main", "t", "b")

    closed = client.close_fixed(["pytest", "requests"], run_url="http://run/3")

    assert closed == [1, 2]
    states = {i["title"]: i["state"] for i in fake_github.issues[REPO]}
    assert states == {
        "Set pytest fails to build (py312)": "closed",
        "Set pytest fails to build (py313)": "closed",
        "Set numpy fails to build (py312)": "open",
        "t": "open",
    }
    first = fake_github.issues[REPO][0]
    assert first["state_reason"] == "completed"
    assert (
        first["comments_list"][-1]["body"] == "Set `pytest` builds again (http://run/3); closing."
    )
    assert client.close_fixed(["pytest"]) == []


def test_failure_body_fences_backticks() -> None:
    body = failure_body("s", "3.12", "p", "a ``` fence\n", None)
    assert "````\na ``` fence\n````" in body
    assert failure_title("s", "3.13") == "Set s fails to build (py313)"


# --- statuses -------------------------------------------------------------------------------


def test_set_status(fake_github: FakeGitHub, client: GitHubClient) -> None:
    client.set_status(SHA, "pytest", "success", "built and pushed", "http://run/1")
    client.set_status(SHA, "numpy", "failure", "x" * 200)
    statuses = fake_github.statuses[SHA]
    assert statuses[0] == {
        "id": 1,
        "state": "success",
        "description": "built and pushed",
        "target_url": "http://run/1",
        "context": "nixpkgs-python/pytest",
    }
    assert statuses[1]["context"] == "nixpkgs-python/numpy"
    assert len(statuses[1]["description"]) == 140
    assert "target_url" not in statuses[1]


def test_dispatch_workflow_runs_ci_on_the_branch(
    fake_github: FakeGitHub, client: GitHubClient
) -> None:
    # a pull request the workflow's GITHUB_TOKEN opened starts no run: the bot dispatches one
    client.dispatch_workflow("nightly/2026-11-21")
    assert fake_github.dispatches[REPO] == [
        {"workflow": "ci.yml", "ref": "nightly/2026-11-21", "inputs": {}}
    ]
    [request] = [r for r in fake_github.writes() if r.path.endswith("/dispatches")]
    assert request.path == f"/repos/{REPO}/actions/workflows/ci.yml/dispatches"
    fake_github.fail_next(1, 403)
    with pytest.raises(GitHubError, match=r"run workflow ci\.yml on b: forbidden") as info:
        client.dispatch_workflow("b")
    assert "actions: write" in str(info.value)


def test_invalid_status_state_refused_locally(client: GitHubClient) -> None:
    with pytest.raises(GitHubError, match="invalid commit status"):
        client.set_status(SHA, "pytest", "done", "x")  # type: ignore[arg-type]


# --- the fake itself checks bodies against GitHub's published shapes ------------------------


def test_fake_rejects_malformed_bodies(fake_github: FakeGitHub) -> None:
    import json
    import urllib.request

    def post(path: str, body: object) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(
            fake_github.base_url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {fake_github.token}"},
        )
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    status, reply = post(f"/repos/{REPO}/pulls", {"title": "x", "head": "b"})
    assert status == 422
    assert reply["errors"] == [{"resource": "pulls", "field": "base", "code": "missing_field"}]
    status, _ = post(f"/repos/{REPO}/issues", {"title": "x", "labels": "set-failure"})
    assert status == 422
    status, _ = post(f"/repos/{REPO}/statuses/{SHA}", {"state": "done"})
    assert status == 422
    status, _ = post(f"/repos/{REPO}/issues/1/comments", {"body": "x"})
    assert status == 404
    status, reply = post(f"/repos/{REPO}/issues", {"title": "x", "bodyy": "typo"})
    assert status == 422
    assert reply["errors"] == [{"resource": "issues", "field": "bodyy", "code": "unexpected_field"}]
    status, _ = post(f"/repos/{REPO}/issues", {"title": "ok", "labels": ["a"]})
    assert status == 201


def test_client_from_env(fake_github: FakeGitHub) -> None:
    from bot.nightly.github import client_from_env

    assert client_from_env({}) is None
    assert client_from_env({"GITHUB_TOKEN": "x"}) is None
    env = {
        "GITHUB_TOKEN": "ignored-when-the-specific-one-is-set",
        "NIXPKGS_PYTHON_GITHUB_TOKEN": fake_github.token,
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": fake_github.base_url,
    }
    client = client_from_env(env, throttle=False)
    assert client is not None
    assert client.repo_name == REPO
