"""Which file of a version a target takes, and why none is usable on it.

The choice is a function of the files and the target alone (its ordered wheel tags and its
nixpkgs release's baselines), so the provider, the lock's assembly and the explanations of
refusals all give the same answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.lock.index.models import DistFile
from bot.model.targets import Target

__all__ = ["build_tag", "choose_artifact", "no_artifact_reason", "refused_wheels"]


_BUILD_TAG = re.compile(r"(\d+)(.*)")


def build_tag(filename: str) -> tuple[int, str] | tuple[()]:
    """A wheel filename's build tag as PEP 427 sorts it: ``()`` without one, else its leading
    digits as a number and the rest as text."""
    parts = filename.removesuffix(".whl").split("-")
    if len(parts) != 6:
        return ()
    m = _BUILD_TAG.fullmatch(parts[2])
    return (int(m.group(1)), m.group(2)) if m else ()


def _wins_tie(f: DistFile, other: DistFile | None) -> bool:
    """Whether wheel ``f`` wins over ``other``, alike in every tag: the higher build tag
    (PEP 427), then the name, for a choice that does not follow the page's order."""
    if other is None:
        return True
    mine, theirs = build_tag(f.filename), build_tag(other.filename)
    return mine > theirs or (mine == theirs and f.filename < other.filename)


def choose_artifact(
    files: Iterable[DistFile], target: Target, prefer: str, *, wheel_only: bool = False
) -> DistFile | None:
    """The file to use on ``target``: the most specific compatible wheel, or the sdist.

    With ``prefer="sdist"`` the sdist wins when there is one (unless ``wheel_only``).
    """
    wheel: DistFile | None = None
    best = 1 << 30
    sdist: DistFile | None = None
    for f in files:
        if f.kind == "sdist":
            if sdist is None or f.filename < sdist.filename:
                sdist = f
            continue
        prio = min((target.tag_priority.get(t, 1 << 30) for t in f.tags), default=1 << 30)
        if prio < best or (prio == best < 1 << 30 and _wins_tie(f, wheel)):
            wheel, best = f, prio
    if wheel_only:
        return wheel
    if prefer == "sdist" and sdist is not None:
        return sdist
    return wheel or sdist


_MANYLINUX = re.compile(r"manylinux_(\d+)_(\d+)_(\w+)")
_MACOS = re.compile(r"macosx_(\d+)_(\d+)_(\w+)")
_LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def _platform_need(platform: str, target: Target) -> tuple[str, tuple[int, int]] | None:
    """("glibc"|"macOS", version) a wheel platform tag of ``target``'s OS and architecture
    needs, or None for a tag of another OS or architecture."""
    linux = target.kernel == "linux"
    m = _MANYLINUX.fullmatch(platform)
    if m and linux:
        arch = m.group(3)
        return ("glibc", (int(m.group(1)), int(m.group(2)))) if arch == target.arch else None
    legacy, _, arch = platform.partition("_")
    if legacy in _LEGACY and linux:
        return ("glibc", _LEGACY[legacy]) if arch == target.arch else None
    m = _MACOS.fullmatch(platform)
    if m and not linux:
        archs = {"universal2": ("x86_64", "aarch64"), "universal": ("x86_64",)}.get(
            m.group(3), ("aarch64",) if m.group(3) == "arm64" else (m.group(3),)
        )
        if target.arch in archs or m.group(3) in ("intel", "fat", "fat3", "fat64"):
            return ("macOS", (int(m.group(1)), int(m.group(2))))
    return None


def refused_wheels(files: Iterable[DistFile], target: Target) -> list[str]:
    """Why the wheels of ``target``'s OS and architecture are not usable on it (wheels of
    other platforms are not mentioned): a wheel baseline above the release's, or another
    Python."""
    release = target.release
    out: dict[str, list[str]] = {}
    for f in files:
        if f.kind != "wheel":
            continue
        fits = any(t in target.tag_priority for t in f.tags)
        if fits and not target.allows_python(f.requires_python):
            out.setdefault(f"requires Python {f.requires_python}", []).append(f.filename)
            continue
        if fits:
            continue
        for tag in sorted(f.tags, key=str):
            need = _platform_need(tag.platform, target)
            if need is None:
                continue
            what, version = need
            have = release.glibc if what == "glibc" else release.macos_min
            if version > have:
                have_text = f"{have[0]}.{have[1]}"
                why = f"needs {what} {version[0]}.{version[1]}, nixpkgs {release.name} " + (
                    f"has {have_text}" if what == "glibc" else f"targets {have_text}"
                )
            elif any(
                t.interpreter == tag.interpreter and t.abi == tag.abi for t in target.tag_priority
            ):  # this Python, a platform tag no installer takes (macOS 11+ tags name X_0)
                why = f"has the platform tag {tag.platform}, not one {target.system} takes"
            else:
                why = f"is for {tag.interpreter}-{tag.abi}, not cp{target.python.replace('.', '')}"
            out.setdefault(why, []).append(f.filename)
            break
    return [f"{', '.join(sorted(names))} {why}" for why, names in sorted(out.items())]


def no_artifact_reason(files: Iterable[DistFile], target: Target) -> str:
    """Why no file of a version is usable on ``target`` (for refusals and errors)."""
    files = list(files)
    refused = refused_wheels(files, target)
    detail = "; ".join(refused) if refused else "no wheel for it and no sdist"
    return f"no wheel or sdist usable on {target.system} ({detail})"
