"""The package's shape, checked by reading its source with `ast` (nothing is imported):

- a stage (`longcurate.synth`, `.select`, `.train`, `.eval`) imports neither another stage nor the
  composition root (`longcurate.config`, `.cli`, `.pipeline`, `.ablate`), not even for type checking:
  stages talk through files named by `core.layout`, and each states what it reads of the run's config
  as a Protocol in its own `config.py`;
- `longcurate.core` imports no stage and not the composition root;
- no import cycle inside a package (modules are the nodes; every import statement is an edge, those
  inside functions and under `TYPE_CHECKING` too);
- no module imports a leading-underscore name from another module;
- no module is over 400 lines and no function over 60.

Each check is a function over source files (or over an import graph), and each has a test below that
plants a violation and sees it caught.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "longcurate"
STAGES = ("synth", "select", "train", "eval")
ROOT_MODULES = ("longcurate.config", "longcurate.cli", "longcurate.pipeline", "longcurate.ablate")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py") if ".venv" not in p.parts)


def _module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, root: Path = ROOT) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, imported names) for every import statement, wherever it stands (inside
    functions and under `if TYPE_CHECKING:` too), relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path, root).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            out.append((node.lineno, module, [a.name for a in node.names]))
    return out


def _owner(module: str) -> str | None:
    """The stage or `core` a module belongs to, `root` for the composition root, None outside."""
    parts = module.split(".")
    if parts[0] != "longcurate":
        return None
    if len(parts) > 1 and (parts[1] in STAGES or parts[1] == "core"):
        return parts[1]
    if ".".join(parts[:2]) in ROOT_MODULES:
        return "root"
    return "package"  # longcurate/__init__.py (the version) and other shared top-level modules


def _targets(module: str, names: list[str]) -> dict[str, str]:
    """{owner: module} of what an import statement brings in (`from longcurate import select` -> select)."""
    if module == "longcurate" and names:
        found = {n: _owner(f"longcurate.{n}") for n in names}
        return {owner: f"longcurate.{n}" for n, owner in found.items() if owner}
    owner = _owner(module)
    return {owner: module} if owner else {}


def boundary_violations(paths: list[Path], root: Path = ROOT) -> list[str]:
    """`<file>: <what>` for every import across a boundary (once per file and target)."""
    bad = []
    for path in paths:
        me, rel = _owner(_module_name(path, root)), path.relative_to(root).as_posix()
        for _, module, names in _imports(path, root):
            for target, name in _targets(module, names).items():
                if me in STAGES and target in STAGES and target != me:
                    bad.append(f"{rel}: stage {me} imports stage {target} ({name})")
                elif me in STAGES and target == "root":
                    bad.append(f"{rel}: stage {me} imports the root ({name})")
                elif me == "core" and target in (*STAGES, "root"):
                    bad.append(f"{rel}: core imports {name}")
    return sorted(set(bad))


def import_graph(paths: list[Path], root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the modules of its own package it imports (`from pkg import mod` counts as `pkg.mod`
    when that is a module of the package)."""
    names = {_module_name(p, root) for p in paths}
    graph: dict[str, set[str]] = {}
    for path in paths:
        me = _module_name(path, root)
        package = me if path.name == "__init__.py" else me.rpartition(".")[0]
        edges = graph.setdefault(me, set())
        for _, module, imported in _imports(path, root):
            for target in [f"{module}.{n}" for n in imported if f"{module}.{n}" in names] or [module]:
                if target != me and target in names and target.rpartition(".")[0] == package:
                    edges.add(target)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[str]:
    """One `import cycle: a -> b -> a` line per strongly connected group of modules (Tarjan), written
    from its smallest name, so the same cycle always reads the same."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(f"import cycle: {' -> '.join(_cycle_path(graph, set(g)))}" for g in groups)


def _cycle_path(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A walk from the group's smallest module back to itself inside the group (breadth first)."""
    start = min(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, ())):
            if w == start:
                return paths[v] + [start]
            if w in group and w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return sorted(group)


def private_imports(paths: list[Path], root: Path = ROOT) -> list[str]:
    bad = []
    for path in paths:
        for line, module, names in _imports(path, root):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            private += [module] if any(p.startswith("_") and not p.startswith("__") for p in module.split(".")) else []
            if private and module != "__future__":
                bad.append(f"{path.relative_to(root)}:{line}: imports private {private} from {module}")
    return bad


def size_violations(paths: list[Path], root: Path = ROOT) -> list[str]:
    bad = []
    for path in paths:
        source = path.read_text(encoding="utf-8")
        rel = path.relative_to(root).as_posix()
        n_lines = source.count("\n")
        if n_lines > MAX_MODULE_LINES:
            bad.append(f"{rel}: {n_lines} lines (max {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    bad.append(f"{rel}:{node.lineno}: {node.name} has {length} lines (max {MAX_FUNCTION_LINES})")
    return bad


def test_stages_import_no_other_stage_nor_the_root_and_core_imports_neither():
    assert boundary_violations(_modules(PACKAGE)) == []


def test_no_import_cycle_inside_a_package():
    assert import_cycles(import_graph(_modules(PACKAGE))) == []


def test_no_module_imports_a_private_name():
    assert private_imports(_modules(PACKAGE, ROOT / "tests", ROOT / "benchmarks")) == []


def test_modules_and_functions_are_small():
    assert size_violations(_modules(PACKAGE, ROOT / "benchmarks")) == []


# --- each check catches what it should -------------------------------------------------------------

def _plant(tmp_path: Path, module: str, source: str) -> Path:
    """A file for `module` (`longcurate.train.probe`) under `tmp_path`, with its packages' __init__."""
    parts = module.split(".")
    for i in range(1, len(parts)):
        init = tmp_path.joinpath(*parts[:i], "__init__.py")
        init.parent.mkdir(parents=True, exist_ok=True)
        init.touch()
    path = tmp_path.joinpath(*parts[:-1], parts[-1] + ".py")
    path.write_text(source)
    return path


def _what(found: list[str]) -> list[str]:
    return [f.split(": ", 1)[1].rsplit(" (", 1)[0] for f in found]


@pytest.mark.parametrize("source, expected", [
    ("from longcurate.select.budget import parse_budget\n", ["stage train imports stage select"]),
    ("from longcurate import eval\n", ["stage train imports stage eval"]),
    ("from ..select import rank\n", ["stage train imports stage select"]),
    ("def f():\n    from longcurate.synth.plan import derived_seed\n", ["stage train imports stage synth"]),
    ("from longcurate.config import RunConfig\n", ["stage train imports the root"]),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from longcurate.config import RunConfig\n",
     ["stage train imports the root"]),
    ("import longcurate.pipeline\n", ["stage train imports the root"]),
    ("from longcurate import cli\n", ["stage train imports the root"]),
    ("from longcurate.ablate.config import ARMS\n", ["stage train imports the root"]),
    ("from longcurate.core.layout import RunLayout\nfrom . import mix\nfrom longcurate import __version__\n", []),
])
def test_the_boundary_check_catches_what_it_should(tmp_path, source, expected):
    """The checker itself, on a planted module inside `longcurate/train` with the given imports."""
    path = _plant(tmp_path, "longcurate.train.probe_module", source)
    assert _what(boundary_violations([path], root=tmp_path)) == expected


def test_core_may_not_import_the_composition_root_or_a_stage(tmp_path):
    path = _plant(tmp_path, "longcurate.core.probe_module",
                  "from longcurate.config import RunConfig\nfrom longcurate import __version__\n"
                  "def f():\n    from longcurate.select import rank\n")
    assert _what(boundary_violations([path], root=tmp_path)) == ["core imports longcurate.config",
                                                                 "core imports longcurate.select"]


def test_the_cycle_check_finds_cycles_in_a_graph():
    graph = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a"}, "p.e": {"p.e"}, "p.f": set()}
    assert import_cycles(graph) == ["import cycle: p.a -> p.b -> p.c -> p.a"]
    assert import_cycles({"p.a": {"p.b"}, "p.b": set()}) == []
    two = import_cycles({"p.x": {"p.y"}, "p.y": {"p.x"}, "p.a": {"p.b"}, "p.b": {"p.a", "p.x"}})
    assert two == ["import cycle: p.a -> p.b -> p.a", "import cycle: p.x -> p.y -> p.x"]


def test_the_cycle_check_finds_cycles_in_planted_modules(tmp_path):
    """Edges from function-level and TYPE_CHECKING imports count; edges to another package do not."""
    paths = [
        _plant(tmp_path, "longcurate.train.a", "from longcurate.train import b\n"),
        _plant(tmp_path, "longcurate.train.b", "def f():\n    from longcurate.train.c import g\n"),
        _plant(tmp_path, "longcurate.train.c", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                               "    from .a import X\n"),
        _plant(tmp_path, "longcurate.train.d", "from longcurate.core import e\n"),
        _plant(tmp_path, "longcurate.core.e", "from longcurate.train import d\n"),  # across packages
    ]
    graph = import_graph(paths, root=tmp_path)
    assert graph["longcurate.train.a"] == {"longcurate.train.b"} and graph["longcurate.core.e"] == set()
    assert import_cycles(graph) == ["import cycle: longcurate.train.a -> longcurate.train.b -> "
                                    "longcurate.train.c -> longcurate.train.a"]


def test_the_private_import_check_catches_what_it_should(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("from a.b import _hidden, shown\nimport pkg._inner\nfrom __future__ import annotations\n")
    found = private_imports([path], root=tmp_path)
    assert len(found) == 2 and "_hidden" in found[0] and "pkg._inner" in found[1]


def test_the_size_check_catches_what_it_should(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))  # def line + 60: 61 lines
    long_function = _plant(tmp_path, "longcurate.train.long_function", f"def f():\n{body}")
    fits = _plant(tmp_path, "longcurate.train.fits", "def f():\n" + body[body.index("\n") + 1:])
    long_module = _plant(tmp_path, "longcurate.train.long_module", "x = 1\n" * (MAX_MODULE_LINES + 1))
    found = size_violations([long_function, fits, long_module], root=tmp_path)
    assert found == [f"longcurate/train/long_function.py:1: f has {MAX_FUNCTION_LINES + 1} lines "
                     f"(max {MAX_FUNCTION_LINES})",
                     f"longcurate/train/long_module.py: {MAX_MODULE_LINES + 1} lines (max {MAX_MODULE_LINES})"]
