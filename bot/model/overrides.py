"""The shared overrides library, read by the bot (the Nix library reads the same files).

``overrides/packages/<normalized-name>.toml`` holds a list of entries::

    [[override]]
    from = "1.0"            # optional, inclusive (PEP 440)
    until = "2.0"           # optional, exclusive
    reason = "one line: why this is needed"          # required
    native-build-inputs = ["postgresql.pg_config"]   # nixpkgs attribute paths (tools)
    build-inputs = ["libxml2.dev"]                   # nixpkgs attribute paths (libraries)
    system-libraries = ["zlib"]                      # linked, not bundled, by a Linux wheel
    build-requires = ["setuptools-scm>=8"]           # extra PEP 508 build requirements
    env = { SETUPTOOLS_SCM_PRETEND_VERSION = "1.0" } # build environment
    patches = ["patches/foo-fix.patch"]              # relative to overrides/, sdists only
    imports-check = false                            # or a list of modules
    check = { command = ["pytest", "-x"], requires = ["pytest"] }  # opt-in tests
    guard = true            # optional: the entry only makes a failure loud (see below)

A guard (``guard = true``) is an entry that never changes a build that succeeds: it turns a
silent fallback into a failure (``PYYAML_FORCE_LIBYAML = "1"``: a missing libyaml fails the
build rather than giving a pure-Python pyyaml).  Re-validation does not judge a guard by
whether the package builds without it (:mod:`bot.nightly.revalidate`).

The resolver adds :func:`extra_build_requires` to a package's build requirements, so the
lock (and the Nix build) has them.  ``overrides/default.nix`` is the Nix escape hatch.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from bot.core.errors import BotError

KEYS = frozenset(
    {
        "from",
        "until",
        "reason",
        "native-build-inputs",
        "build-inputs",
        "build-requires",
        "env",
        "patches",
        "imports-check",
        "check",
        "system-libraries",
        "guard",
    }
)
_ATTR = re.compile(r"^[A-Za-z_][A-Za-z0-9_'.-]*$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class OverrideError(BotError):
    """An overrides file is invalid."""


@dataclass(frozen=True)
class Override:
    """One entry of the overrides library."""

    name: NormalizedName
    reason: str
    where: str
    from_: Version | None = None
    until: Version | None = None
    native_build_inputs: tuple[str, ...] = ()
    build_inputs: tuple[str, ...] = ()
    system_libraries: tuple[str, ...] = ()
    build_requires: tuple[Requirement, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    patches: tuple[str, ...] = ()
    imports_check: bool | tuple[str, ...] | None = None
    check_command: tuple[str, ...] = ()
    check_requires: tuple[str, ...] = ()
    guard: bool = False  #: it only makes a failure loud: not judged by build success

    def matches(self, version: Version | str) -> bool:
        """Whether ``version`` is in ``[from, until)``."""
        v = version if isinstance(version, Version) else Version(version)
        return (self.from_ is None or v >= self.from_) and (self.until is None or v < self.until)


def _strings(value: Any, key: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise OverrideError(f"{key!r} must be a list of strings", where=where)
    return tuple(value)


def _version(value: Any, key: str, where: str) -> Version | None:
    if value is None:
        return None
    try:
        return Version(str(value))
    except InvalidVersion as exc:
        raise OverrideError(f"{key!r} is not a PEP 440 version: {value!r}", where=where) from exc


def parse_entry(
    name: NormalizedName, data: Mapping[str, Any], where: str, overrides_dir: Path
) -> Override:
    """Validate one ``[[override]]`` table."""
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise OverrideError(
            f"unknown keys: {', '.join(unknown)}",
            where=where,
            hint=f"known keys: {', '.join(sorted(KEYS))}",
        )
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason.strip() or "\n" in reason.strip():
        raise OverrideError("'reason' is required: one line saying why", where=where)
    from_ = _version(data.get("from"), "from", where)
    until = _version(data.get("until"), "until", where)
    if from_ is not None and until is not None and from_ >= until:
        raise OverrideError(f"empty version range [{from_}, {until})", where=where)
    natives = _strings(data.get("native-build-inputs", []), "native-build-inputs", where)
    libs = _strings(data.get("build-inputs", []), "build-inputs", where)
    system_libs = _strings(data.get("system-libraries", []), "system-libraries", where)
    for attr in (*natives, *libs, *system_libs):
        if not _ATTR.match(attr) or ".." in attr or attr.endswith("."):
            raise OverrideError(
                f"{attr!r} is not a nixpkgs attribute path",
                where=where,
                hint="a name or a dotted path to a nested attribute or output: "
                "'zlib', 'libxml2.dev', 'postgresql.pg_config'",
            )
    requires = []
    for text in _strings(data.get("build-requires", []), "build-requires", where):
        try:
            requires.append(Requirement(text))
        except InvalidRequirement as exc:
            raise OverrideError(f"invalid build requirement {text!r}: {exc}", where=where) from exc
    env = data.get("env", {})
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and _ENV.match(k) and isinstance(v, str) for k, v in env.items()
    ):
        raise OverrideError("'env' must map variable names to strings", where=where)
    patches = _strings(data.get("patches", []), "patches", where)
    for patch in patches:
        if not (overrides_dir / patch).is_file():
            raise OverrideError(
                f"patch {patch!r} does not exist",
                where=where,
                hint=f"paths are relative to {overrides_dir}",
            )
    imports_check: bool | tuple[str, ...] | None = None
    if "imports-check" in data:
        value = data["imports-check"]
        imports_check = (
            value if isinstance(value, bool) else _strings(value, "imports-check", where)
        )
    check = data.get("check", {})
    if not isinstance(check, dict) or set(check) - {"command", "requires"}:
        raise OverrideError("'check' takes 'command' and 'requires'", where=where)
    guard = data.get("guard", False)
    if not isinstance(guard, bool):
        raise OverrideError(
            f"'guard' must be true or false, not {guard!r}",
            where=where,
            hint="guard = true marks an entry that only makes a failure loud",
        )
    return Override(
        name=name,
        reason=reason.strip(),
        where=where,
        from_=from_,
        until=until,
        native_build_inputs=natives,
        build_inputs=libs,
        system_libraries=system_libs,
        build_requires=tuple(requires),
        env=dict(env),
        patches=patches,
        imports_check=imports_check,
        check_command=_strings(check.get("command", []), "check.command", where),
        check_requires=_strings(check.get("requires", []), "check.requires", where),
        guard=guard,
    )


def load_file(path: Path, overrides_dir: Path) -> list[Override]:
    """The entries of one ``overrides/packages/<name>.toml``."""
    name = canonicalize_name(path.stem)
    if path.stem != name:
        raise OverrideError(
            f"file name must be the normalized package name {name!r}", where=str(path)
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise OverrideError(f"cannot read: {exc}", where=str(path)) from exc
    unknown = sorted(set(data) - {"override"})
    if unknown:
        raise OverrideError(
            f"unknown top-level keys: {', '.join(unknown)}",
            where=str(path),
            hint="entries are [[override]] tables",
        )
    entries = data.get("override", [])
    if not isinstance(entries, list):
        raise OverrideError("'override' must be an array of tables ([[override]])", where=str(path))
    return [
        parse_entry(name, e, f"{path} (override #{i + 1})", overrides_dir)
        for i, e in enumerate(entries)
    ]


def load_overrides(root: Path) -> dict[NormalizedName, list[Override]]:
    """Every entry of the overrides library of the repository at ``root``
    (``root/overrides/packages/*.toml``), by package."""
    overrides_dir = root / "overrides"
    packages = overrides_dir / "packages"
    out: dict[NormalizedName, list[Override]] = {}
    if not packages.is_dir():
        return out
    for path in sorted(packages.glob("*.toml")):
        entries = load_file(path, overrides_dir)
        if entries:
            out[canonicalize_name(path.stem)] = entries
    return out


def matching(
    overrides: Mapping[NormalizedName, list[Override]], name: str, version: Version | str
) -> list[Override]:
    """The entries for ``name`` whose range contains ``version``."""
    return [o for o in overrides.get(canonicalize_name(name), []) if o.matches(version)]


def extra_build_requires(
    overrides: Mapping[NormalizedName, list[Override]], name: str, version: Version | str
) -> list[Requirement]:
    """Extra build requirements the library adds to ``name`` ``version`` (for the resolver)."""
    return [r for o in matching(overrides, name, version) for r in o.build_requires]
