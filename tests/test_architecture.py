"""The app graph runs one way: core <- medcard <- reservations <- screening; dosing apart; hospital the shell.

Read from the source (every import statement, function-local ones too), not from what happens to be loaded,
so an import that only runs on some path is caught as well. See docs/architecture.md.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What each top-level package may import of the project's other packages.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "medcard": {"core"},
    "reservations": {"core", "medcard"},
    "screening": {"core", "medcard", "reservations"},
    "dosing": {"core", "medcard", "screening"},
    "hospital": {"core", "medcard", "reservations", "screening", "dosing"},
}
# Function-local imports of project modules, each with a reason comment on its line or the line above.
MAX_LOCAL_IMPORTS = 8


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    package: str
    target: str
    local: bool
    reason: str


def _project_files() -> Iterator[Path]:
    for package in ALLOWED:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _imports(path: Path) -> Iterator[Import]:
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    package = path.relative_to(ROOT).parts[0]
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_function.update(id(sub) for sub in ast.walk(node) if sub is not node)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            targets = [package] if node.level else [node.module or ""]
        else:
            continue
        here = lines[node.lineno - 1]
        above = lines[node.lineno - 2] if node.lineno > 1 else ""
        trailing = here.split("#", 1)[1].strip() if "#" in here else ""
        if trailing.startswith(("noqa", "type:")):
            trailing = ""  # a linter's pragma is not a reason
        reason = trailing or (above.strip()[1:] if above.strip().startswith("#") else "")
        for target in targets:
            top = target.split(".")[0]
            if top in ALLOWED:
                yield Import(path, node.lineno, package, top, id(node) in in_function, reason.strip())


def _all_imports() -> list[Import]:
    return [found for path in _project_files() for found in _imports(path)]


def test_no_app_imports_another_against_the_direction() -> None:
    wrong = [
        f"{i.path.relative_to(ROOT)}:{i.line} {i.package} -> {i.target}"
        for i in _all_imports()
        if i.target != i.package and i.target not in ALLOWED[i.package]
    ]
    assert wrong == []


def test_the_packages_form_no_cycle() -> None:
    edges = {(i.package, i.target) for i in _all_imports() if i.target != i.package}
    graph: dict[str, set[str]] = {package: set() for package in ALLOWED}
    for source, target in edges:
        graph[source].add(target)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})) for nxt in graph[start]
        )

    assert [package for package in graph if reaches(package, package, set())] == []


def test_function_local_project_imports_are_few_and_say_why() -> None:
    local = [i for i in _all_imports() if i.local]
    silent = [f"{i.path.relative_to(ROOT)}:{i.line}" for i in local if not i.reason]
    assert silent == []
    assert len({(i.path, i.line) for i in local}) <= MAX_LOCAL_IMPORTS


def test_production_code_imports_nothing_from_tests() -> None:
    offenders = []
    for path in _project_files():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(name == "tests" or name.startswith(("tests.", "django.test")) for name in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    allowed_sandbox = {p for p in offenders if "/sandbox" in p}  # the sandbox app is not production code
    assert sorted(set(offenders) - allowed_sandbox) == []
