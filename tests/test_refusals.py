"""Every refusal said: wheel baselines of the pin's release (glibc 2.42, macOS 14.0),
Requires-Python and missing artifacts, in the resolution, `lock` output, --json and the
night's report (issue 13, items 1 and 6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from bot.core.errors import ResolutionError
from bot.lock.resolve import Request, resolve
from bot.model.targets import targets_for
from bot.nightly import report
from tests.frozen_index import FrozenIndex
from tests.plugins.pypi import IndexServer
from tests.report_json import from_json
from tests.test_lock_cli import CUTOFF, demo_index, lock, make_repo  # noqa: F401
from tests.test_resolve import FRONTEND

MAC = ["cp312-cp312-macosx_14_0_arm64", "cp312-cp312-macosx_14_0_x86_64"]


def linux(glibc: str) -> list[str]:
    return [f"cp312-cp312-manylinux_{glibc}_x86_64", f"cp312-cp312-manylinux_{glibc}_aarch64"]


def run(spec: dict[str, Any], *requested: str) -> Any:
    request = Request(
        requirements=[(Requirement(r), "case") for r in requested],
        targets=targets_for("3.12"),
    )
    return resolve(FrozenIndex({**FRONTEND, **spec}), request)


def test_manylinux_2_34_accepted_2_43_refused_and_said() -> None:
    resolution = run(
        {
            "fast": {
                "3.0": {"files": [*linux("2_43"), *MAC]},
                "2.0": {"files": [*linux("2_34"), *MAC]},
            }
        },
        "fast",
    )
    fast = resolution.packages["fast"]
    assert str(fast.version) == "2.0"
    chosen = {t.system: f.filename for t, f in fast.artifacts.items()}
    assert chosen["x86_64-linux"] == "fast-2.0-cp312-cp312-manylinux_2_34_x86_64.whl"
    assert fast.refused is not None
    newest, reason = fast.refused
    assert str(newest) == "3.0"
    assert "no wheel or sdist usable on aarch64-linux" in reason
    assert "fast-3.0-cp312-cp312-manylinux_2_43_x86_64.whl needs glibc 2.43" in reason
    assert "nixpkgs 26.05 has 2.42" in reason


@pytest.mark.parametrize("macos", ["12_0", "14_0"])
def test_macos_arm64_wheels_up_to_the_deployment_target(macos: str) -> None:
    resolution = run(
        {
            "mac": {
                "2.0": {"files": [*linux("2_17"), "cp312-cp312-macosx_15_0_arm64", "sdist"]},
                "1.0": {"files": [*linux("2_17"), f"cp312-cp312-macosx_{macos}_arm64"]},
            },
            "setuptools": {"75.0": {}},
        },
        "mac; platform_machine == 'arm64' or sys_platform == 'linux'",
    )
    mac = resolution.packages["mac"]
    # 2.0 has an sdist: the arm64 Mac builds it (a 15.0 wheel is above the 14.0 target)
    assert str(mac.version) == "2.0"
    assert {t.system for t in mac.artifacts} == {"x86_64-linux", "aarch64-linux", "aarch64-darwin"}
    assert {t.system: f.kind for t, f in mac.artifacts.items()}["aarch64-darwin"] == "sdist"
    # not held below, but built from source because of the baseline: said too
    assert mac.refused is not None
    assert str(mac.refused[0]) == "2.0"
    assert mac.refused[1] == (
        "aarch64-darwin builds the sdist (mac-2.0-cp312-cp312-macosx_15_0_arm64.whl needs "
        "macOS 15.0, nixpkgs 26.05 targets 14.0)"
    )
    # without the sdist the 1.0 wheel (12.0 or 14.0: both within the target) is taken
    resolution = run(
        {
            "mac": {
                "2.0": {"files": [*linux("2_17"), "cp312-cp312-macosx_15_0_arm64"]},
                "1.0": {"files": [*linux("2_17"), f"cp312-cp312-macosx_{macos}_arm64"]},
            }
        },
        "mac; platform_machine == 'arm64' or sys_platform == 'linux'",
    )
    mac = resolution.packages["mac"]
    assert str(mac.version) == "1.0"
    by_system = {t.system: f.filename for t, f in mac.artifacts.items()}
    assert by_system["aarch64-darwin"] == f"mac-1.0-cp312-cp312-macosx_{macos}_arm64.whl"
    assert mac.refused is not None
    assert "needs macOS 15.0, nixpkgs 26.05 targets 14.0" in mac.refused[1]


def test_a_platform_tag_no_installer_takes_is_said_as_such() -> None:
    """A wheel for this Python whose platform tag no installer takes (macOS 11 and later
    tags name X_0, so pip takes no macosx_13_5 wheel either) is not 'for another Python'."""
    spec = {"odd": {"1.0": {"files": [*linux("2_17"), "cp312-cp312-macosx_13_5_arm64"]}}}
    with pytest.raises(ResolutionError) as info:
        run(spec, "odd; platform_machine == 'arm64'")
    message = str(info.value)
    assert (
        "odd-1.0-cp312-cp312-macosx_13_5_arm64.whl has the platform tag macosx_13_5_arm64, "
        "not one aarch64-darwin takes" in message
    ), message
    assert "is for cp312-cp312" not in message


def test_most_specific_wheel_wins_per_system() -> None:
    resolution = run(
        {
            "multi": {
                "1.0": {
                    "files": [
                        "py3-none-any",
                        "cp312-abi3-manylinux_2_17_x86_64",
                        "cp312-cp312-manylinux_2_28_x86_64",
                        "cp312-cp312-manylinux_2_17_x86_64",
                        "cp312-cp312-macosx_11_0_arm64",
                        "cp312-cp312-macosx_14_0_arm64",
                    ]
                }
            }
        },
        "multi",
    )
    by_system = {t.system: f.filename for t, f in resolution.packages["multi"].artifacts.items()}
    assert by_system == {
        "x86_64-linux": "multi-1.0-cp312-cp312-manylinux_2_28_x86_64.whl",
        "aarch64-linux": "multi-1.0-py3-none-any.whl",
        "aarch64-darwin": "multi-1.0-cp312-cp312-macosx_14_0_arm64.whl",
        "x86_64-darwin": "multi-1.0-py3-none-any.whl",
    }


def test_requires_python_refusal_is_said() -> None:
    resolution = run(
        {"newpy": {"2.0": {"requires-python": ">=3.13"}, "1.0": {}}},
        "newpy",
    )
    newpy = resolution.packages["newpy"]
    assert str(newpy.version) == "1.0"
    assert newpy.refused is not None
    assert newpy.refused[1] == "requires Python >=3.13 (the lock is for 3.12)"


def test_held_by_a_requirement_is_no_refusal() -> None:
    resolution = run({"pinned": {"2.0": {}, "1.0": {}}}, "pinned<2")
    assert resolution.packages["pinned"].refused is None


def test_a_system_without_any_artifact_is_named() -> None:
    with pytest.raises(ResolutionError) as info:
        run({"linuxonly": {"1.0": {"files": linux("2_17")}}}, "linuxonly")
    message = str(info.value)
    assert "no wheel or sdist usable on aarch64-darwin" in message
    assert "no wheel or sdist usable on x86_64-darwin" in message


def test_lock_output_and_json_say_the_refusal(
    demo_index: IndexServer,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = make_repo(tmp_path, ["demo-lib"])
    assert lock(repo, demo_index, "--exclude-newer", CUTOFF) == 0
    out = capsys.readouterr().out
    # 4.0 is after the snapshot; 3.0 needs Python 3.14: the newest release at it is refused
    assert "demo-lib 2.0 held below 3.0: requires Python >=3.14 (the lock is for 3.12)" in out
    assert lock(repo, demo_index, "--exclude-newer", CUTOFF, "--json", "--refresh") == 0
    (outcome,) = json.loads(capsys.readouterr().out)
    assert outcome["refusals"] == [
        {
            "name": "demo-lib",
            "locked": "2.0",
            "newest": "3.0",
            "reason": "requires Python >=3.14 (the lock is for 3.12)",
        }
    ]


def test_night_report_lists_refusals() -> None:
    fresh = report.freshness_of(
        {"numpy": ("2.3.0", "2.3.0", 0.0)},
        refused=[("numpy", "2.3.0", "2.4.0", "Python 3.12: no wheel or sdist usable on x")],
    )
    night = report.NightReport(
        "2026-12-01", (report.SetReport("sci", ("3.12",), "ok", freshness=fresh),)
    )
    markdown = report.to_markdown(night)
    assert (
        "Held below the newest by a wheel baseline, Requires-Python, a missing file or "
        "another member's requirement:" in markdown
    )
    assert "- `numpy` 2.3.0, not 2.4.0: Python 3.12: no wheel or sdist usable on x" in markdown
    back = from_json(report.to_json(night))
    assert back.sets[0].freshness is not None
    assert back.sets[0].freshness.refused == fresh.refused


def test_a_member_held_below_by_another_members_requirement_says_by_whom() -> None:
    """The month's replay: the report counted cython, docutils, pygments behind all month
    without saying why; the reason is another member's upper bound, named with its version."""
    resolution = run(
        {
            "app": {"1.0": {"files": ["py3-none-any"], "requires": ["lib<2", "other"]}},
            "other": {"1.0": {"files": ["py3-none-any"], "requires": ["lib>=1"]}},
            "lib": {"2.1": {"files": ["py3-none-any"]}, "1.5": {"files": ["py3-none-any"]}},
        },
        "app",
        "lib",
    )
    lib = resolution.packages["lib"]
    assert str(lib.version) == "1.5"
    assert str(lib.newest) == "2.1"  # what the set's own requirements allow
    assert lib.refused is not None
    newest, reason = lib.refused
    assert str(newest) == "2.1"
    assert reason == "app 1.0 requires lib<2"  # only the bound that excludes 2.1 is named
    assert resolution.packages["other"].refused is None  # at its newest


def test_a_build_requirement_bound_is_named_as_one() -> None:
    resolution = run(
        {
            # only an sdist: every system builds it, with its backend's bound on the tool
            "ext": {"1.0": {"files": ["sdist"], "build-requires": ["tool>=3.2,<3.3"]}},
            "tool": {"3.3.1": {"files": ["py3-none-any"]}, "3.2.9": {"files": ["py3-none-any"]}},
        },
        "ext",
        "tool",
    )
    tool = resolution.packages["tool"]
    assert str(tool.version) == "3.2.9"
    assert tool.refused is not None
    assert tool.refused[1] == "ext 1.0 requires tool<3.3,>=3.2 to build it"


def test_no_single_holder_is_not_invented() -> None:
    """lib 2.0 is kept out only by the set's own constraint: that is not 'held' by anyone."""
    resolution = run(
        {"lib": {"2.0": {"files": ["py3-none-any"]}, "1.0": {"files": ["py3-none-any"]}}},
        "lib<2",
    )
    lib = resolution.packages["lib"]
    assert str(lib.version) == "1.0"
    assert str(lib.newest) == "1.0"
    assert lib.refused is None
