"""The layout of ``bot/``: stage packages over a small core, each importing only what lies
beneath it, and no import cycle between modules.

Every import counts: module level, inside functions (the CLI's lazy imports) and under
``TYPE_CHECKING``.  A violation is named by file and line, so the message says what to move.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: the stages from the bottom up; a stage imports its own modules and the tiers below, never a
#: stage in its own tier (siblings stay independent) nor one above.  ``bot/__init__.py``
#: (the version and the supported Pythons) counts as the core.
TIERS: tuple[frozenset[str], ...] = (
    frozenset({"core"}),
    frozenset({"model"}),
    frozenset({"lock"}),
    frozenset({"build", "cache"}),
    frozenset({"generate", "nightly"}),
    frozenset({"cli"}),
)


@dataclass(frozen=True)
class Import:
    source: str  #: the importing module
    target: str  #: the imported module (a module of the tree)
    where: str  #: file:line of the import statement


def modules(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under ``root``, by dotted name."""
    found: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(root: Path, package: str) -> list[Import]:
    """Every import of a module of the tree by a module of the tree, wherever it stands."""
    mods = modules(root, package)
    out: list[Import] = []
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        here = name if is_pkg else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    mod = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    mod = node.module or ""
                for alias in node.names:  # `from pkg import sub` imports the module pkg.sub
                    sub = f"{mod}.{alias.name}"
                    targets.append(sub if sub in mods else mod)
            where = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
            for imported in targets:
                target = imported
                while target and target not in mods:  # `import bot.x.y` of a name in bot.x
                    target = target.rpartition(".")[0]
                if target and target != name:
                    out.append(Import(name, target, where))
    return out


def stage(module: str) -> str:
    """The stage of a module: the package under the top one (the top one itself: core)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "core"


def tier(name: str) -> int:
    for rank, stages in enumerate(TIERS):
        if name in stages:
            return rank
    raise AssertionError(f"stage {name!r} is in no tier of tests/test_layout.py's TIERS")


def upward(found: list[Import]) -> list[str]:
    """The imports of a stage above (or beside) the importing one."""
    bad = []
    for imp in found:
        src, dst = stage(imp.source), stage(imp.target)
        if src != dst and tier(dst) >= tier(src):
            bad.append(
                f"{imp.where}: {imp.source} ({src}) imports {imp.target} ({dst}), "
                f"which is not beneath it"
            )
    return bad


def cycles(found: list[Import]) -> list[str]:
    """Each set of modules that import one another in a circle, with the imports closing it."""
    graph: dict[str, dict[str, str]] = {}
    for imp in found:
        graph.setdefault(imp.source, {}).setdefault(imp.target, imp.where)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    bad = []
    for component in components:
        members = set(component)
        edges = [
            f"{where}: {src} imports {dst}"
            for src in component
            for dst, where in sorted(graph.get(src, {}).items())
            if dst in members
        ]
        bad.append(f"import cycle between {', '.join(component)}: " + "; ".join(edges))
    return bad


def check(root: Path, package: str = "bot") -> list[str]:
    """Every layout violation of ``package`` under ``root`` (empty: the layout holds)."""
    found = imports(root, package)
    return upward(found) + cycles(found)


def test_every_stage_imports_only_what_lies_beneath_it_and_nothing_circles() -> None:
    assert check(ROOT) == []


def test_every_stage_of_the_tree_is_in_a_tier() -> None:
    stages = {stage(name) for name in modules(ROOT, "bot")}
    assert stages == set().union(*TIERS)


def test_the_walk_sees_lazy_and_type_checking_imports() -> None:
    found = {(i.source, i.target) for i in imports(ROOT, "bot")}
    # lazy (inside a function) and module-level imports, and a relative one
    assert ("bot.cli.build", "bot.build.command") in found
    assert ("bot.nightly.publish", "bot.nightly.options") in found  # under TYPE_CHECKING
    assert ("bot.lock.index.client", "bot.lock.index.http") in found


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_an_upward_import_and_a_cycle_are_reported_by_file_and_line(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "bot/__init__.py": "",
            "bot/core/__init__.py": "",
            "bot/core/proc.py": "import os\n\n\ndef run():\n    from bot.nightly import night\n",
            "bot/model/__init__.py": "",
            "bot/model/sets.py": "from bot.core import proc\n",  # downward: fine
            "bot/nightly/__init__.py": "",
            "bot/nightly/night.py": "from bot.nightly.report import Row\n",
            "bot/nightly/report.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import night\n"
            ),
            "bot/cli/__init__.py": "from bot.model import sets\nfrom bot.nightly import night\n",
        },
    )
    problems = check(tmp_path)
    assert len(problems) == 2, problems
    assert problems[0] == (
        "bot/core/proc.py:5: bot.core.proc (core) imports bot.nightly.night (nightly), "
        "which is not beneath it"
    )
    assert problems[1].startswith("import cycle between bot.nightly.night, bot.nightly.report:")
    assert "bot/nightly/night.py:1: bot.nightly.night imports bot.nightly.report" in problems[1]
    assert "bot/nightly/report.py:3: bot.nightly.report imports bot.nightly.night" in problems[1]


def test_a_sibling_stage_is_not_beneath(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "bot/__init__.py": "",
            "bot/build/__init__.py": "",
            "bot/build/command.py": "import bot.cache.keys\n",
            "bot/cache/__init__.py": "",
            "bot/cache/keys.py": "from bot import __version__\n",  # the top package: core
        },
    )
    assert check(tmp_path) == [
        "bot/build/command.py:1: bot.build.command (build) imports bot.cache.keys (cache), "
        "which is not beneath it"
    ]
