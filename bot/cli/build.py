"""Commands about builds and the binary cache: ``build``, ``push``, ``cache ...``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bot.cli.base import (
    Context,
    NixpkgsChoice,
    cache_dir_option,
    cli,
    exclude_newer_option,
    index_url_option,
    json_option,
    nixpkgs_option,
    pass_ctx,
    push_timeout_option,
    python_option,
    ssh_config_option,
)
from bot.core.errors import BotError

if TYPE_CHECKING:
    from datetime import datetime

    from bot.build.command import BuildOptions

max_jobs_option = click.option(
    "--max-jobs",
    type=click.IntRange(1, 1024),
    default=None,
    metavar="N",
    help="Derivations nix builds at once [default: one per core]; each build may use "
    "every core (an environment runs its packages' checks in parallel).",
)


def _build_options(
    obj: Context,
    sets: tuple[str, ...],
    python: str | None,
    nixpkgs: NixpkgsChoice,
    out_link: Path | None = None,
    keep_going: bool = False,
    max_jobs: int | None = None,
    system: str | None = None,
) -> BuildOptions:
    from bot.build.command import BuildOptions

    return BuildOptions(
        sets=list(sets),
        python=python,
        out_link=out_link,
        keep_going=keep_going,
        repo=obj.repo,
        nixpkgs=nixpkgs.nixpkgs,
        nixpkgs_path=nixpkgs.path,
        max_jobs=max_jobs,
        system=system,
    )


def _check_system(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from bot.model.targets import SYSTEMS

    if value is not None and value not in SYSTEMS:
        raise click.BadParameter(f"{value!r} is not one of {', '.join(SYSTEMS)}")
    return value


system_option = click.option(
    "--system",
    metavar="SYSTEM",
    callback=_check_system,
    help="Build for this Nix system (e.g. aarch64-linux) on remote builders or with "
    "extra-platforms [default: this machine's].",
)


@cli.command("build")
@click.argument("sets", nargs=-1)
@python_option
@click.option(
    "--out-link",
    type=click.Path(path_type=Path),
    metavar="PREFIX",
    help="Leave PREFIX-<set>-py3XY linking to each set's python environment.",
)
@click.option("--keep-going", is_flag=True, help="Build every package that can be built.")
@max_jobs_option
@system_option
@click.option(
    "--outcome",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Also write the results as JSON to FILE (what CI's commit job reads).",
)
@nixpkgs_option
@json_option
@pass_ctx
def build_command(
    obj: Context,
    sets: tuple[str, ...],
    python: str | None,
    out_link: Path | None,
    keep_going: bool,
    max_jobs: int | None,
    system: str | None,
    outcome: Path | None,
    nixpkgs: NixpkgsChoice,
    as_json: bool,
) -> None:
    """Build sets from their locks with Nix and print the store paths."""
    from bot.build.command import build_sets, outcome_document, summary
    from bot.core.files import write_atomic

    opts = _build_options(
        obj, sets, python, nixpkgs, out_link, keep_going, max_jobs=max_jobs, system=system
    )
    with obj.progress("building", enabled=not as_json) as progress:
        results = build_sets(opts, progress=progress)
    if outcome is not None:
        outcome.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(outcome, json.dumps(outcome_document(opts, results), indent=2) + "\n")
    if as_json:
        click.echo(json.dumps([r.to_json() for r in results], indent=2))
    else:
        click.echo(summary(results))
    if any(not r.ok for r in results):
        raise SystemExit(2)


def _built_paths(
    obj: Context,
    sets: tuple[str, ...],
    python: str | None,
    nixpkgs: NixpkgsChoice,
    progress: Callable[[str], None],
    system: str | None = None,
) -> list[str]:
    from bot.build.command import build_sets, summary

    opts = _build_options(obj, sets, python, nixpkgs, system=system)
    results = build_sets(opts, progress=progress)
    failed = [r for r in results if not r.ok]
    if failed:
        raise BotError("some sets did not build, nothing was pushed", hint="\n" + summary(failed))
    return [r.out_path for r in results if r.out_path]


@cli.command("push")
@click.argument("sets", nargs=-1)
@python_option
@click.option(
    "--to",
    "store",
    metavar="STORE_URI",
    help="ssh-ng://HOST, ssh://HOST, file:///DIR or rsync+ssh://HOST/DIR "
    "[default: the signed file cache in <repo>/binary-cache].",
)
@click.option(
    "--signing-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Secret key file [default: $NIXPKGS_PYTHON_SIGNING_KEY_FILE, "
    "$NIXPKGS_PYTHON_SIGNING_KEY, or the machine's key for the default cache].",
)
@ssh_config_option
@push_timeout_option
@system_option
@nixpkgs_option
@json_option
@pass_ctx
def push_command(
    obj: Context,
    sets: tuple[str, ...],
    python: str | None,
    store: str | None,
    signing_key: Path | None,
    ssh_config: Path | None,
    push_timeout: float,
    system: str | None,
    nixpkgs: NixpkgsChoice,
    as_json: bool,
) -> None:
    """Sign and push the sets' closures to a binary cache (only missing paths)."""
    from bot import cache

    target = store or cache.default_store(obj.repo)
    signing_key = cache.signing_key_for(target, obj.repo, signing_key)
    with obj.progress("pushing", enabled=not as_json) as progress:
        paths = _built_paths(obj, sets, python, nixpkgs, progress, system)
        result = cache.push(
            paths,
            to=target,
            signing_key=signing_key,
            ssh_config=ssh_config,
            timeout=push_timeout,
        )
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        click.echo(
            f"{target}: copied {result.copied_count} of {len(result.closure)} paths "
            f"in {result.duration:.1f}s"
        )


@cli.group("cache")
def cache_group() -> None:
    """Binary cache keys and verification."""


@cache_group.command("keygen")
@click.argument("name")
@click.option(
    "--secret-key",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the secret key (never commit it).",
)
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the public key (commit it, e.g. nix/cache-key.pub).",
)
def keygen_command(name: str, secret_key: Path, public_key: Path) -> None:
    """Generate a signing key pair NAME (e.g. cache.example.org-1)."""
    from bot import cache

    text = cache.cache_keygen(name, secret_key, public_key)
    click.echo(f"public key: {text}")
    click.echo(f"secret key written to {secret_key} (mode 0600); keep it out of the repository")


@cache_group.command("verify")
@click.argument("sets", nargs=-1)
@python_option
@click.option(
    "--from",
    "store",
    metavar="STORE_URI",
    required=True,
    help="The cache to substitute from (http(s)://, file://, ssh-ng://, ssh://).",
)
@click.option(
    "--public-key",
    required=True,
    metavar="FILE_OR_KEY",
    help="The only key to trust: a file holding it, or the key text.",
)
@ssh_config_option
@system_option
@nixpkgs_option
@json_option
@pass_ctx
def verify_command(
    obj: Context,
    sets: tuple[str, ...],
    python: str | None,
    store: str,
    public_key: str,
    ssh_config: Path | None,
    system: str | None,
    nixpkgs: NixpkgsChoice,
    as_json: bool,
) -> None:
    """Substitute the sets into a fresh store that trusts only PUBLIC_KEY."""
    from bot import cache
    from bot.build.command import _targets, out_paths, prepare_nixpkgs

    opts = _build_options(obj, sets, python, nixpkgs, system=system)
    prepare_nixpkgs(opts.repo, nixpkgs=opts.nixpkgs, path=opts.nixpkgs_path)
    paths: list[str] = []
    for set_name, py, error in _targets(opts):
        if error is not None or py is None:
            raise BotError(error or f"set {set_name} has no lock")
        paths += out_paths(opts, set_name, [py])
    key: str | Path = Path(public_key) if Path(public_key).is_file() else public_key
    with obj.progress("verifying", enabled=not as_json):
        result = cache.verify(paths, from_=store, public_key=key, ssh_config=ssh_config)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    elif result.ok:
        click.echo(f"{store}: all {len(result.checked)} paths substitute with a trusted signature")
    else:
        for failure in result.failures:
            click.echo(f"FAILED {failure.path}: {failure.reason}: {failure.detail}", err=True)
    if not result.ok:
        raise SystemExit(2)


@cli.command("hold-back")
@click.argument("set_name", metavar="SET")
@click.option(
    "--system",
    required=True,
    metavar="SYSTEM",
    callback=_check_system,
    help="The Nix system this job built SET for (CI's matrix job builds one).",
)
@exclude_newer_option("now (pass the night's snapshot: every system must lock alike)")
@index_url_option
@cache_dir_option
@click.option(
    "--build-outcome",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="The `build --outcome` file of tonight's locks on SYSTEM (missing: not built).",
)
@click.option(
    "--outcome",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    metavar="FILE",
    help="Where to write what was found (holdback.json, read by CI's commit job).",
)
@click.option(
    "--configs",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    metavar="DIR",
    help="Where to put the locks of each configuration kept, built here (DIR/<n>/).",
)
@max_jobs_option
@nixpkgs_option
@pass_ctx
def hold_back_command(
    obj: Context,
    set_name: str,
    system: str,
    exclude_newer: datetime | None,
    index_url: str | None,
    cache_dir: Path | None,
    build_outcome: Path | None,
    outcome: Path,
    configs: Path,
    max_jobs: int | None,
    nixpkgs: NixpkgsChoice,
) -> None:
    """CI's per-system hold-back: when tonight's locks of SET (in sets/, as `lock` wrote them)
    do not build on SYSTEM, find the bumps since the committed locks to hold back, as the
    nightly does (at most 8 builds); when they do, also build the holds the committed locks
    record.  Commits nothing; exit 2 when nothing builds."""
    from datetime import UTC, datetime

    from bot.core.files import read_json, write_atomic
    from bot.core.repolock import repository_lock
    from bot.lock.command import LockOptions
    from bot.model.sets import load_sets
    from bot.nightly.holdback import system_hold_back

    document: Any = None
    if build_outcome is not None and build_outcome.is_file():
        try:
            document = read_json(build_outcome)
            problem = "" if isinstance(document, dict) else "not a JSON object"
        except json.JSONDecodeError as exc:
            problem = f"not JSON: {exc}"
        except ValueError as exc:  # too large, or not UTF-8
            problem = str(exc)
        if problem:
            raise BotError(
                f"unreadable build outcome: {problem}",
                where=str(build_outcome),
                hint="pass the file `nixpkgs-python build --outcome` wrote, or none",
            )
    [pset] = load_sets(obj.repo, [set_name])
    when = exclude_newer or datetime.now(UTC).replace(microsecond=0)
    lock_opts = LockOptions(repo=obj.repo, exclude_newer=when, index_url=index_url,
                            cache_dir=cache_dir)  # fmt: skip
    build_opts = _build_options(obj, (set_name,), None, nixpkgs, max_jobs=max_jobs, system=system)
    with repository_lock(obj.repo, "hold-back"):  # a CI log: one line per probe
        found = system_hold_back(
            pset, system, document, configs, lock_opts=lock_opts, build_opts=build_opts,
            today=when.date().isoformat(), progress=lambda msg: click.echo(msg, err=True),
        )  # fmt: skip
    outcome.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(outcome, json.dumps(found, indent=2) + "\n")
    if found["held"] is None:
        click.echo(f"{set_name} on {system}: {found['error']}", err=True)
        raise SystemExit(2)
    held = ", ".join(found["held"]) or "nothing"
    click.echo(f"{set_name} on {system}: builds with {held} held ({found['builds']} build(s))")
