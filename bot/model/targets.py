"""Resolution targets: a Python minor version on a Nix system.

A lock covers one Python minor version and every Nix system of a nixpkgs release (the pin's
row of :data:`bot.model.nixpkgs.RELEASES`).  Each target has the marker environment PEP 508 markers
are evaluated in and the ordered wheel tags it accepts (most specific first), with the wheel
baselines of that release (its glibc, its darwin deployment target), so the resolver and the
artifact choice never look at the machine the bot happens to run on.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

from packaging import tags
from packaging.markers import Marker, UndefinedEnvironmentName
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from bot import SUPPORTED_PYTHONS
from bot.core.errors import MetadataError, SetError
from bot.model.nixpkgs import DEFAULT_RELEASE, RELEASES, Release

#: the default release's facts (the pin's release; a lock made in a repository uses its pin's)
DEFAULT = RELEASES[DEFAULT_RELEASE]
SYSTEMS: tuple[str, ...] = DEFAULT.systems

_MACHINE = {"x86_64": "x86_64", "aarch64": "aarch64"}
_MAC_ARCH = {"x86_64": "x86_64", "aarch64": "arm64"}


@dataclass(frozen=True, order=True)
class Target:
    """One (Python minor version, Nix system) pair."""

    python: str
    system: str
    #: the nixpkgs release whose baselines the wheel tags follow
    release: Release = field(default=DEFAULT, repr=False)

    @property
    def arch(self) -> str:
        return self.system.split("-", 1)[0]

    @property
    def kernel(self) -> str:
        return self.system.split("-", 1)[1]

    @property
    def python_full_version(self) -> str:
        return f"{self.python}.0"

    def environment(self, extra: str = "") -> dict[str, str]:
        """The PEP 508 marker environment of this target."""
        linux = self.kernel == "linux"
        return {
            "implementation_name": "cpython",
            "implementation_version": self.python_full_version,
            "os_name": "posix",
            "platform_machine": _MACHINE[self.arch] if linux else _MAC_ARCH[self.arch],
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux" if linux else "Darwin",
            "platform_version": "",
            "python_full_version": self.python_full_version,
            "python_version": self.python,
            "sys_platform": "linux" if linux else "darwin",
            "extra": extra,
        }

    def marker(self) -> str:
        """A PEP 508 marker that is true exactly on this target's system."""
        env = self.environment()
        return (
            f"sys_platform == '{env['sys_platform']}' "
            f"and platform_machine == '{env['platform_machine']}'"
        )

    def evaluate(self, marker: Marker | None, extras: frozenset[str] = frozenset()) -> bool:
        """Whether ``marker`` holds on this target for any of ``extras`` (or none)."""
        if marker is None:
            return True
        try:
            return any(marker.evaluate(self.environment(extra)) for extra in ("", *sorted(extras)))
        except UndefinedEnvironmentName as exc:
            problem = f"no variable {exc.args[0]!r} in package metadata"
        except ValueError as exc:  # UndefinedComparison, or a version past int conversion
            problem = str(exc)
        raise MetadataError(
            f"the marker {str(marker)!r} cannot be evaluated on Python {self.python} "
            f"{self.system}: {problem}",
            hint="PEP 508 markers use python_version, sys_platform, platform_machine, extra, ...",
        )

    def allows_python(self, requires_python: SpecifierSet | None) -> bool:
        """Whether a distribution's Requires-Python admits this Python minor version."""
        if requires_python is None:
            return True
        return _allows(requires_python, self.python_full_version)

    @functools.cached_property
    def tag_priority(self) -> dict[tags.Tag, int]:
        """Accepted wheel tags mapped to their priority (0 = most specific)."""
        tags_ = _tags_for(self.python, self.system, self.release.glibc, self.release.macos_min)
        return {tag: i for i, tag in enumerate(tags_)}


_ALLOWS: dict[tuple[int, str], tuple[SpecifierSet, bool]] = {}


def _allows(requires_python: SpecifierSet, version: str) -> bool:
    # keyed by identity: index pages share one SpecifierSet per distinct string, and
    # SpecifierSet.__hash__ canonicalises every specifier each time it is called (it showed
    # up as the top cost of a cold lock); the entry keeps the object alive, so ids stay unique
    key = (id(requires_python), version)
    hit = _ALLOWS.get(key)
    if hit is not None and hit[0] is requires_python:
        return hit[1]
    result = requires_python.contains(Version(version), prereleases=True)
    _ALLOWS[key] = (requires_python, result)
    return result


@functools.cache
def _platforms(system: str, glibc: tuple[int, int], macos_min: tuple[int, int]) -> tuple[str, ...]:
    arch, kernel = system.split("-", 1)
    if kernel == "linux":
        out = [f"manylinux_2_{m}_{arch}" for m in range(glibc[1], 4, -1)]
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        for minor, name in legacy.items():
            if arch == "x86_64" or minor == 17:
                out.insert(out.index(f"manylinux_2_{minor}_{arch}") + 1, f"{name}_{arch}")
        return tuple(out)
    return tuple(tags.mac_platforms(macos_min, _MAC_ARCH[arch]))


@functools.cache
def _tags_for(
    python: str, system: str, glibc: tuple[int, int], macos_min: tuple[int, int]
) -> tuple[tags.Tag, ...]:
    major, minor = (int(x) for x in python.split("."))
    platforms = list(_platforms(system, glibc, macos_min))
    # the ABI of the Nix interpreter (a release build with the GIL), never that of whichever
    # Python runs the bot (packaging would read it from this interpreter's sysconfig)
    abis = [f"cp{major}{minor}"]
    return (
        *tags.cpython_tags((major, minor), abis=abis, platforms=platforms),
        *tags.compatible_tags((major, minor), interpreter=f"cp{major}{minor}", platforms=platforms),
    )


def targets_for(python: str, release: Release = DEFAULT) -> tuple[Target, ...]:
    """All targets of one lock: ``python`` on every system of ``release``."""
    if python not in SUPPORTED_PYTHONS:
        raise SetError(
            f"unsupported Python version {python!r}",
            hint=f"use one of {', '.join(SUPPORTED_PYTHONS)}",
        )
    return tuple(Target(python, s, release) for s in release.systems)


def systems_marker(systems: frozenset[str], every: Sequence[str] = SYSTEMS) -> str | None:
    """A marker true exactly on ``systems`` (None when that is ``every`` system of the lock)."""
    if systems >= frozenset(every):
        return None
    kernels = {
        "linux": frozenset(s for s in every if s.endswith("linux")),
        "darwin": frozenset(s for s in every if s.endswith("darwin")),
    }
    parts: list[str] = []
    rest = set(systems)
    for kernel, members in kernels.items():
        if members <= rest:
            parts.append(f"sys_platform == '{kernel}'")
            rest -= members
    parts += [Target("3.12", s).marker() for s in sorted(rest)]
    if len(parts) == 1:
        return parts[0]
    return " or ".join(f"({p})" if " and " in p else p for p in parts)
