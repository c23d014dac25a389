"""A damaged lock file (a bad merge, a hand edit, a stray byte) is one LockError naming it
and saying what to do, whoever reads it (build, commit-only, publish through read_lock; lock
itself for the lock it replaces), never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.core.errors import LockError
from bot.lock import document as lockfile
from tests.plugins.pypi import IndexServer

HEAD = 'lock-version = "1.0"\ncreated-by = "nixpkgs-python"\nrequires-python = "==3.12.*"\n'

#: a lock's text (valid TOML) -> what the error says is wrong with it
UNUSABLE = {
    HEAD + '[[packages]]\nversion = "1.0"\n': "packages",
    HEAD + '[packages]\nname = "a"\n': "packages",
    HEAD + 'tool = "nixpkgs-python"\npackages = []\n': "tool",
    HEAD + 'packages = []\n[tool]\nnixpkgs-python = "x"\n': "tool.nixpkgs-python is a string",
    HEAD + 'packages = []\n[tool.nixpkgs-python]\nheld = "x"\n': "held is not an array",
}


def make_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "sets" / "demo").mkdir(parents=True)
    (repo / "sets" / "demo" / "set.yaml").write_text(
        "description: demo\npython: ['3.12']\nrequirements:\n  - 'demo-app'\n"
    )
    return repo


def damage(path: Path, how: str) -> None:
    if how == "not-utf-8":
        path.write_bytes(HEAD.encode() + b"packages = []\n# caf\xe9\n")
    elif how == "directory":
        path.mkdir()
        (path / "x").write_text("")
    else:
        path.write_text(how)


@pytest.mark.parametrize(
    ("how", "problem"),
    [
        ("not-utf-8", "not UTF-8 text"),
        ("directory", "a directory, not a lock file"),
        *UNUSABLE.items(),
    ],
    ids=["not-utf-8", "directory", *(f"unusable-{n}" for n in range(len(UNUSABLE)))],
)
def test_read_lock_names_the_damage(tmp_path: Path, how: str, problem: str) -> None:
    path = tmp_path / "pylock.py312.toml"
    damage(path, how)
    with pytest.raises(LockError, match=problem) as info:
        lockfile.read_lock(path)
    assert info.value.where == str(path)
    assert f"git checkout -- {path}" in str(info.value)
    assert "nixpkgs-python lock" in str(info.value)


@pytest.mark.parametrize("how", ["not-utf-8", "directory", *list(UNUSABLE)[:2]])
def test_build_of_a_damaged_lock_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    repo = make_repo(tmp_path)
    lock = repo / "sets" / "demo" / "pylock.py312.toml"
    damage(lock, how)
    # standalone, no interpreters: the lock is read (and refused) before anything is built
    assert main(["--repo", str(repo), "build", "--standalone", "demo"]) != 0
    out, err = capsys.readouterr()
    assert f"FAILED  demo (Python 3.12): set 'demo': {lock}: " in out, out
    assert "the lock is damaged" in out
    assert "Traceback" not in out + err


@pytest.mark.parametrize("text", list(UNUSABLE), ids=[f"unusable-{n}" for n in range(5)])
def test_lock_refuses_to_read_a_damaged_old_lock(
    pypi_index: IndexServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    repo = make_repo(tmp_path)
    lock = repo / "sets" / "demo" / "pylock.py312.toml"
    lock.write_text(text)
    argv = ["--repo", str(repo), "-q", "lock", "--index-url", pypi_index.url]
    code = main([*argv, "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code != 0
    assert f"{lock}: the existing lock is not usable: " in err, err
    assert UNUSABLE[text] in err
    assert "restore it" in err
    assert "Traceback" not in err
    assert lock.read_text() == text  # left as it was
    assert pypi_index.requests == []  # refused before anything was asked
