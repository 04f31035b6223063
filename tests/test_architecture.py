"""The package's shape, checked by reading its source with `ast` (nothing is imported):

- a stage (`longcurate.synth`, `.select`, `.train`, `.eval`) never imports another stage: stages talk
  through files named by `core.layout`;
- `longcurate.core` imports no stage and not the composition root (`longcurate.config`, `.cli`, `.ablate`,
  `.pipeline`);
- no module imports a leading-underscore name from another module;
- no module is over 400 lines and no function over 60, except the ones listed with a reason.
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
# (module path relative to the repository, function name) -> why it is longer than 60 lines.
LONG_FUNCTIONS: dict[tuple[str, str], str] = {}


def _modules(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py") if ".venv" not in p.parts)


def _module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, root: Path = ROOT) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, imported names) for every import statement, relative ones resolved."""
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


def _targets(module: str, names: list[str]) -> set[str]:
    """Owners of what an import statement brings in (`from longcurate import select` -> select)."""
    owner = _owner(module)
    if module == "longcurate" and names:
        return {_owner(f"longcurate.{n}") for n in names} - {None}
    return {owner} if owner else set()


def boundary_violations(paths: list[Path], root: Path = ROOT) -> list[str]:
    bad = []
    for path in paths:
        me = _owner(_module_name(path, root))
        for line, module, names in _imports(path, root):
            for target in _targets(module, names):
                if me in STAGES and target in STAGES and target != me:
                    bad.append(f"{path.relative_to(root)}:{line}: stage {me} imports stage {target} ({module})")
                if me == "core" and target in (*STAGES, "root"):
                    bad.append(f"{path.relative_to(root)}:{line}: core imports {module}")
    return bad


def private_imports(paths: list[Path], root: Path = ROOT) -> list[str]:
    bad = []
    for path in paths:
        for line, module, names in _imports(path, root):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            private += [module] if any(p.startswith("_") and not p.startswith("__") for p in module.split(".")) else []
            if private and module != "__future__":
                bad.append(f"{path.relative_to(root)}:{line}: imports private {private} from {module}")
    return bad


def size_violations(paths: list[Path]) -> list[str]:
    bad = []
    for path in paths:
        source = path.read_text(encoding="utf-8")
        rel = str(path.relative_to(ROOT))
        n_lines = source.count("\n")
        if n_lines > MAX_MODULE_LINES:
            bad.append(f"{rel}: {n_lines} lines (max {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES and (rel, node.name) not in LONG_FUNCTIONS:
                    bad.append(f"{rel}:{node.lineno}: {node.name} has {length} lines (max {MAX_FUNCTION_LINES})")
    return bad


def test_stages_do_not_import_each_other_and_core_imports_no_stage():
    assert boundary_violations(_modules(PACKAGE)) == []


def test_no_module_imports_a_private_name():
    assert private_imports(_modules(PACKAGE, ROOT / "tests", ROOT / "benchmarks")) == []


def test_modules_and_functions_are_small():
    assert size_violations(_modules(PACKAGE, ROOT / "benchmarks")) == []


def test_listed_long_functions_still_exist_and_are_long():
    """An exception that no longer applies is removed from the list."""
    for (rel, name), why in LONG_FUNCTIONS.items():
        tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"))
        lengths = [n.end_lineno - n.lineno + 1 for n in ast.walk(tree)
                   if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name]
        assert lengths and max(lengths) > MAX_FUNCTION_LINES, (rel, name, why)


@pytest.mark.parametrize("source, expected", [
    ("from longcurate.select.budget import parse_budget\n", ["stage train imports stage select"]),
    ("from longcurate import eval\n", ["stage train imports stage eval"]),
    ("from ..select import rank\n", ["stage train imports stage select"]),
    ("from longcurate.core.layout import RunLayout\nfrom . import mix\nfrom longcurate import __version__\n", []),
])
def test_the_boundary_check_catches_what_it_should(tmp_path, source, expected):
    """The checker itself, on a fake module inside `longcurate/train` with the given imports."""
    path = tmp_path / "longcurate" / "train" / "probe_module.py"
    path.parent.mkdir(parents=True)
    path.write_text(source)
    found = boundary_violations([path], root=tmp_path)
    assert [f.split(": ", 1)[1].rsplit(" (", 1)[0] for f in found] == expected


def test_core_may_not_import_the_composition_root(tmp_path):
    path = tmp_path / "longcurate" / "core" / "probe_module.py"
    path.parent.mkdir(parents=True)
    path.write_text("from longcurate.config import RunConfig\nfrom longcurate import __version__\n")
    assert len(boundary_violations([path], root=tmp_path)) == 1


def test_the_private_import_check_catches_what_it_should(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("from a.b import _hidden, shown\nimport pkg._inner\nfrom __future__ import annotations\n")
    found = private_imports([path], root=tmp_path)
    assert len(found) == 2 and "_hidden" in found[0] and "pkg._inner" in found[1]
