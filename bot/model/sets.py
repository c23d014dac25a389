"""Load and validate ``sets/<name>/set.yaml``.

Every validation error names the file, the line and the field, so a maintainer can fix a set
without reading Python.  Unknown fields are errors: a typo must not silently do nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from bot import SUPPORTED_PYTHONS
from bot.core.errors import MetadataError, SetError
from bot.model.locks import lock_name
from bot.model.targets import targets_for

DEFAULT_INDEX = "https://pypi.org/simple/"
#: a valid project name (PEP 508), as the key of build-requirements
_PROJECT_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)

FIELDS = {
    "description": "one line saying what the set is for",
    "maintainers": "list of GitHub handles",
    "python": 'list of Python minor versions, e.g. ["3.12", "3.13"]',
    "requirements": "list of PEP 508 requirement lines (or a requirements.txt beside set.yaml)",
    "constraints": "list of PEP 508 constraint lines (limit versions without adding packages)",
    "prefer": "wheel or sdist (default wheel)",
    "build-requirements": "mapping of package name to extra build requirement lines",
    "indexes": "list of {url, packages} extra package indexes",
    "systems": "list of Nix systems to lock for, e.g. [x86_64-linux, aarch64-linux] "
    "(default: every system of the pinned nixpkgs release)",
}

#: the Nix systems a set may name under ``systems``
KNOWN_SYSTEMS = ("aarch64-darwin", "aarch64-linux", "x86_64-darwin", "x86_64-linux")


@dataclass(frozen=True)
class Located:
    """A value with the place it was written, for error messages."""

    value: Requirement
    where: str


@dataclass(frozen=True)
class IndexSpec:
    """An extra index; when ``packages`` is set, exactly those come only from it."""

    url: str
    packages: frozenset[NormalizedName] | None = None


@dataclass(frozen=True)
class PackageSet:
    """A validated set definition."""

    name: str
    path: Path  #: the set's directory
    description: str
    maintainers: tuple[str, ...]
    python: tuple[str, ...]
    requirements: tuple[Located, ...]
    constraints: tuple[Located, ...] = ()
    prefer: str = "wheel"
    build_requirements: dict[NormalizedName, tuple[Located, ...]] = field(default_factory=dict)
    indexes: tuple[IndexSpec, ...] = ()
    #: the Nix systems to lock for (empty: every system of the pin's release)
    systems: tuple[str, ...] = ()

    @property
    def roots(self) -> tuple[NormalizedName, ...]:
        """Normalized names of the requested packages, sorted."""
        return tuple(sorted({canonicalize_name(r.value.name) for r in self.requirements}))

    def lock_path(self, python: str) -> Path:
        """``sets/<name>/pylock.py312.toml`` for ``python="3.12"``."""
        return self.path / lock_name(python)

    def inputs(self) -> dict[str, Any]:
        """Everything in the definition that can change a lock, as plain data."""
        return {
            "requirements": sorted(str(r.value) for r in self.requirements),
            "constraints": sorted(str(r.value) for r in self.constraints),
            "prefer": self.prefer,
            "build-requirements": {
                k: sorted(str(r.value) for r in v)
                for k, v in sorted(self.build_requirements.items())
            },
            "indexes": [
                {"url": i.url, "packages": sorted(i.packages) if i.packages is not None else None}
                for i in self.indexes
            ],
        } | ({"systems": list(self.systems)} if self.systems else {})

    def inputs_hash(self, python: str, extra: object = None) -> str:
        """A stable hash of one lock's inputs (``extra``: JSON data, e.g. the overrides' build
        requirements)."""
        blob = json.dumps(
            {"set": self.inputs(), "python": python, "extra": extra}, sort_keys=True
        ).encode()
        return "sha256:" + hashlib.sha256(blob).hexdigest()


SET_URL_HINT = "publish the package to an index and list the index under 'indexes'"
SET_OPTIONS_HINT = "use set.yaml fields (constraints, indexes) instead"


#: the longest version a requirement may name (a real one is under 40 characters; a long run
#: of digits costs an int conversion Python refuses past 4300 digits)
MAX_VERSION = 128


def parse_requirement(text: str, where: str, *, url_hint: str = SET_URL_HINT) -> Located:
    """One PEP 508 requirement (no direct URLs) the resolver can use as it is, or a SetError
    naming ``where``."""
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise SetError(
            f"invalid requirement {text!r}: {exc}",
            where=where,
            hint="write a PEP 508 line such as 'pytest>=8' or 'requests[socks]'",
        ) from None
    if req.url:
        raise SetError(
            f"direct URL requirements are not supported: {text!r}", where=where, hint=url_hint
        )
    for spec in req.specifier:
        if len(spec.version) > MAX_VERSION:
            raise SetError(
                f"the version in {text!r} is too long ({len(spec.version)} characters)",
                where=where,
                hint=f"versions have at most {MAX_VERSION} characters",
            )
        if spec.operator == "===" and not _is_version(spec.version):
            raise SetError(
                f"'{spec}' in {text!r} can never match: {spec.version!r} is not a PEP 440 version",
                where=where,
                hint="the bot locks PEP 440 versions only; write ==VERSION",
            )
    if req.marker is not None:
        _check_marker(req, text, where)
    return Located(req, where)


def _is_version(text: str) -> bool:
    try:
        Version(text)
    except ValueError:
        return False
    return True


def _check_marker(req: Requirement, text: str, where: str) -> None:
    """The marker evaluates on every target a lock can have (Python versions, systems)."""
    for python in SUPPORTED_PYTHONS:
        for target in targets_for(python):
            try:
                target.evaluate(req.marker, frozenset(req.extras))
            except MetadataError as exc:
                raise SetError(
                    f"invalid requirement {text!r}: {exc.message}",
                    where=where,
                    hint="use PEP 508 marker variables (python_version, sys_platform, "
                    "platform_machine, ...); 'extras' and 'dependency_groups' exist only in "
                    "lock files",
                ) from None


def read_requirements_file(
    path: Path, *, options_hint: str = SET_OPTIONS_HINT, url_hint: str = SET_URL_HINT
) -> list[Located]:
    """The requirements of a requirements.txt (no pip options), each with ``file:line``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SetError(f"cannot read: {exc.strerror or exc}", where=str(path)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = data[: exc.start].count(b"\n") + 1
        raise SetError(
            f"not UTF-8 text: byte {data[exc.start : exc.start + 1]!r} on line {bad_line}",
            where=f"{path}:{bad_line}",
            hint="save the file as UTF-8",
        ) from None
    out = []
    for number, raw in _logical_lines(text.removeprefix("\ufeff")):
        line = _COMMENT.sub("", raw).strip()
        if not line:
            continue
        where = f"{path}:{number}"
        option = _pip_option(line)
        if option is not None:
            shown = option if len(option) <= 60 else option[:57] + "..."
            raise SetError(
                f"pip options are not supported here: {shown!r}",
                where=where,
                hint=HASH_HINT if option.startswith("--hash") else options_hint,
            )
        out.append(parse_requirement(line, where, url_hint=url_hint))
    return out


#: a comment, as pip strips it: '#' at the start of a line or after whitespace (a '#' inside
#: a word, e.g. a URL's fragment, is not one)
_COMMENT = re.compile(r"(^|\s+)#.*$")
HASH_HINT = (
    "drop the --hash options: the lock records and checks every file's sha256 itself "
    "(pip-compile writes them only with --generate-hashes)"
)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(number of its first line, text) of each line, a line ending in a backslash joined
    with the next as pip joins them (a comment line ends the joined line)."""
    out: list[tuple[int, str]] = []
    joined: list[str] = []
    first = 0
    for number, line in enumerate(text.splitlines(), 1):
        comment = _COMMENT.match(line) is not None
        if line.endswith("\\") and not comment:
            if not joined:
                first = number
            joined.append(line.strip("\\"))
            continue
        if joined:
            out.append((first, "".join([*joined, " " + line if comment else line])))
            joined = []
        else:
            out.append((number, line))
    if joined:
        out.append((first, "".join(joined)))
    return out


def _pip_option(line: str) -> str | None:
    """The pip options of a line, from the first word that starts with '-' (where pip's
    options begin: ``-r other.txt``, ``pkg==1 --hash=sha256:...``), or None."""
    match = re.search(r"(?:^|\s)(-.*)$", line)
    return None if match is None else match.group(1)


def sets_root(repo: Path) -> Path:
    return repo / "sets"


def list_sets(repo: Path) -> list[str]:
    """Names of every set in the repository, sorted."""
    root = sets_root(repo)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "set.yaml").is_file())


def load_set(repo: Path, name: str) -> PackageSet:
    """Load and validate one set; raises SetError naming file, line and field."""
    directory = sets_root(repo) / name
    path = directory / "set.yaml"
    if not path.is_file():
        known = list_sets(repo)
        raise SetError(
            f"unknown set {name!r}",
            where=str(sets_root(repo)),
            hint=f"known sets: {', '.join(known)}" if known else "create sets/<name>/set.yaml",
        )
    return _Parser(path, name).parse()


def load_sets(repo: Path, names: list[str] | tuple[str, ...] = ()) -> list[PackageSet]:
    """Load the named sets (all sets when ``names`` is empty)."""
    return [load_set(repo, n) for n in (names or list_sets(repo))]


class _Parser:
    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name

    def where(self, node: yaml.Node | None, fld: str | None = None) -> str:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        return f"{self.path}{line}" + (f" (field {fld!r})" if fld else "")

    def fail(
        self, node: yaml.Node | None, fld: str | None, message: str, hint: str | None = None
    ) -> SetError:
        return SetError(message, where=self.where(node, fld), hint=hint)

    def parse(self) -> PackageSet:
        root = self.root()
        fields, keys = self.fields(root)
        description = self.string(fields.get("description"), "description", required=root)
        maintainers = tuple(self.strings(fields.get("maintainers"), "maintainers"))
        pythons = self.pythons(fields.get("python"), root)
        requirements = self.set_requirements(fields, keys, root)
        constraints = self.requirements(fields.get("constraints"), "constraints")
        for c in constraints:
            if c.value.extras:
                raise SetError("constraints cannot name extras", where=c.where)

        prefer = self.string(fields.get("prefer"), "prefer") or "wheel"
        if prefer not in ("wheel", "sdist"):
            raise self.fail(
                fields["prefer"], "prefer", f"must be 'wheel' or 'sdist', not {prefer!r}"
            )
        build_reqs = self.build_requirements(fields.get("build-requirements"))
        indexes = tuple(self.indexes(fields.get("indexes")))
        systems = self.systems(fields.get("systems"))
        return PackageSet(
            name=self.name,
            path=self.path.parent,
            description=description,
            maintainers=maintainers,
            python=tuple(pythons),
            requirements=tuple(requirements),
            constraints=tuple(constraints),
            prefer=prefer,
            build_requirements=build_reqs,
            indexes=indexes,
            systems=tuple(sorted(set(systems))),
        )

    def root(self) -> yaml.MappingNode:
        """The file's top-level mapping."""
        try:
            root = yaml.compose(self.path.read_text(encoding="utf-8"))
        except RecursionError:
            raise SetError(
                "not a set definition: nested deeper than YAML can be read",
                where=str(self.path),
                hint="a set.yaml is a mapping of fields whose values are strings and lists",
            ) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise SetError(f"not valid YAML: {problem}", where=f"{self.path}{line}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SetError(f"cannot read: {exc}", where=str(self.path)) from None
        if not isinstance(root, yaml.MappingNode):
            raise self.fail(root, None, "expected a mapping of fields at the top level")
        return root

    def fields(self, root: yaml.MappingNode) -> tuple[dict[str, yaml.Node], dict[str, yaml.Node]]:
        """(field -> value node, field -> key node): known fields, each given once."""
        fields: dict[str, yaml.Node] = {}
        keys: dict[str, yaml.Node] = {}
        for key_node, value_node in root.value:
            key = self.key(key_node, None)
            if key not in FIELDS:
                raise self.fail(
                    key_node,
                    key,
                    f"unknown field {key!r}",
                    hint="known fields: " + ", ".join(FIELDS),
                )
            if key in fields:
                raise self.fail(key_node, key, f"field {key!r} given twice")
            fields[key] = value_node
            keys[key] = key_node
        return fields, keys

    def pythons(self, python_node: yaml.Node | None, root: yaml.Node) -> list[str]:
        """The required ``python`` field: supported versions, at least one."""
        if python_node is None:
            raise self.fail(
                root, "python", "missing required field 'python'", hint=FIELDS["python"]
            )
        pythons = self.strings(python_node, "python")
        for value, node in zip(pythons, self.items(python_node, "python"), strict=True):
            if value not in SUPPORTED_PYTHONS:
                raise self.fail(
                    node,
                    "python",
                    f"unsupported Python version {value!r}",
                    hint=f"use one of {', '.join(SUPPORTED_PYTHONS)}",
                )
        if not pythons:
            raise self.fail(python_node, "python", "needs at least one Python version")
        return pythons

    def set_requirements(
        self, fields: dict[str, yaml.Node], keys: dict[str, yaml.Node], root: yaml.Node
    ) -> list[Located]:
        """The set's requirements: the ``requirements`` field or a requirements.txt beside
        set.yaml (not both), at least one."""
        requirements = self.requirements(fields.get("requirements"), "requirements")
        txt = self.path.parent / "requirements.txt"
        if txt.is_file():
            if "requirements" in fields:
                raise self.fail(
                    keys["requirements"],
                    "requirements",
                    "both set.yaml 'requirements' and requirements.txt are given",
                    hint="keep one of them",
                )
            requirements = self.requirements_txt(txt)
        if not requirements:
            raise self.fail(
                root, "requirements", "the set requests no packages", hint=FIELDS["requirements"]
            )
        return requirements

    def build_requirements(
        self, br_node: yaml.Node | None
    ) -> dict[NormalizedName, tuple[Located, ...]]:
        """The ``build-requirements`` mapping: package name -> its extra build requirements."""
        build_reqs: dict[NormalizedName, tuple[Located, ...]] = {}
        if br_node is None:
            return build_reqs
        if not isinstance(br_node, yaml.MappingNode):
            raise self.fail(
                br_node,
                "build-requirements",
                "expected a mapping",
                hint=FIELDS["build-requirements"],
            )
        for k, v in br_node.value:
            package = self.key(k, "build-requirements")
            if not _PROJECT_NAME.match(package):
                raise self.fail(k, "build-requirements", f"{package!r} is not a package name")
            build_reqs[canonicalize_name(package)] = tuple(
                self.requirements(v, f"build-requirements.{package}")
            )
        return build_reqs

    def systems(self, systems_node: yaml.Node | None) -> list[str]:
        """The optional ``systems`` field: known Nix systems, at least one when given."""
        systems = self.strings(systems_node, "systems")
        for value, node in zip(systems, self.items(systems_node, "systems"), strict=True):
            if value not in KNOWN_SYSTEMS:
                raise self.fail(
                    node,
                    "systems",
                    f"unknown Nix system {value!r}",
                    hint=f"use some of {', '.join(KNOWN_SYSTEMS)}",
                )
        if systems_node is not None and not systems:
            raise self.fail(systems_node, "systems", "needs at least one system")
        return systems

    def key(self, node: yaml.Node, fld: str | None) -> str:
        """A mapping key, which must be a plain string."""
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, fld, "expected a field name (a plain string) as the key")
        return str(node.value)

    def string(self, node: yaml.Node | None, fld: str, required: yaml.Node | None = None) -> str:
        if node is None:
            if required is not None:
                raise self.fail(required, fld, f"missing required field {fld!r}", hint=FIELDS[fld])
            return ""
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            raise self.fail(node, fld, "expected a string")
        return str(node.value).strip()

    def items(self, node: yaml.Node | None, fld: str) -> list[yaml.Node]:
        if node is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(
                node, fld, "expected a list", hint=FIELDS.get(fld.split(".", maxsplit=1)[0])
            )
        return list(node.value)

    def strings(self, node: yaml.Node | None, fld: str) -> list[str]:
        out = []
        for item in self.items(node, fld):
            if not isinstance(item, yaml.ScalarNode):
                raise self.fail(item, fld, "expected a list of strings")
            if item.tag == "tag:yaml.org,2002:float":
                raise self.fail(
                    item, fld, f'{item.value} is a number here; quote it: "{item.value}"'
                )
            out.append(str(item.value))
        return out

    def requirement(self, text: str, where: str) -> Located:
        return parse_requirement(text, where)

    def requirements(self, node: yaml.Node | None, fld: str) -> list[Located]:
        return [
            self.requirement(self.strings_one(item, fld), self.where(item, fld))
            for item in self.items(node, fld)
        ]

    def strings_one(self, item: yaml.Node, fld: str) -> str:
        if not isinstance(item, yaml.ScalarNode):
            raise self.fail(item, fld, "expected a requirement string")
        return str(item.value)

    def requirements_txt(self, path: Path) -> list[Located]:
        return read_requirements_file(path)

    def indexes(self, node: yaml.Node | None) -> list[IndexSpec]:
        out = []
        for item in self.items(node, "indexes"):
            if not isinstance(item, yaml.MappingNode):
                raise self.fail(item, "indexes", "expected {url: ..., packages: [...]}")
            data = {self.key(k, "indexes"): v for k, v in item.value}
            unknown = set(data) - {"url", "packages"}
            if unknown:
                raise self.fail(
                    item,
                    "indexes",
                    f"unknown key(s) {sorted(unknown)}",
                    hint="an index has 'url' and optional 'packages'",
                )
            url = self.string(data.get("url"), "indexes", required=item)
            self.index_url(data["url"], url)
            pkgs = data.get("packages")
            names = None
            if pkgs is not None:
                given = self.strings(pkgs, "indexes")
                for value, item_node in zip(given, self.items(pkgs, "indexes"), strict=True):
                    if not _PROJECT_NAME.match(value):
                        raise self.fail(item_node, "indexes", f"{value!r} is not a package name")
                names = frozenset(canonicalize_name(p) for p in given)
            out.append(IndexSpec(url if url.endswith("/") else url + "/", names))
        return out

    def index_url(self, node: yaml.Node, url: str) -> None:
        """An http(s) URL (what the index client speaks) with a host a look-up can take and
        a valid port, in ASCII."""
        hint = "write the simple-API URL, e.g. https://pypi.example/simple/"
        problem = None
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:  # a bad IPv6 address or port
            problem = str(exc)
        else:
            if parts.scheme == "file":
                problem = "the index client speaks only HTTP"
                hint = (
                    "serve the directory over HTTP (e.g. `python -m http.server -d DIR`) and "
                    "write its http:// URL"
                )
            elif parts.scheme not in ("http", "https") or any(c.isspace() for c in url):
                problem = "expected an http:// or https:// URL"
            elif not url.isascii():
                problem = "it has non-ASCII characters (percent-encode them)"
            elif not parts.hostname:
                problem = "the URL names no host"
            elif not _valid_host(parts.hostname):
                problem = f"{parts.hostname!r} is not a valid host name"
            elif port == 0:
                problem = "the port must be 1-65535"
        if problem is not None:
            raise self.fail(node, "indexes", f"not an index URL: {url!r}: {problem}", hint=hint)


def _valid_host(host: str) -> bool:
    """Whether a look-up can take ``host`` (as getaddrinfo encodes it: IDNA, each label
    1-63 characters)."""
    try:
        host.encode("idna")
    except UnicodeError:
        return False
    return True
