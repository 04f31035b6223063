"""Every command's `--help` (issue 15): only flags the command reads, each with its default, and an
override example made from one of the command's own keys.

"Reads" is checked on the code: a command's code is its function and every longcurate function or
class it reaches by name (module globals, imports inside functions, `module.function`), followed
transitively. A flag that sets the config key `a.b.c` is read when that code accesses an attribute
`c`; a plain flag (`dest`) when the code reads `args.dest`.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import textwrap
from functools import cache
from typing import Any, Iterator

import pytest

from longcurate.cli import build_parser
from longcurate.config import RunConfig
from longcurate.core.argv import GLOBAL_FLAGS, subparsers_of
from longcurate.core.config import check_key

ARGPARSE_OWN = {"help", "version", *GLOBAL_FLAGS}  # the global flags are read by `longcurate.cli.main`


def leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    children = subparsers_of(parser)
    if not children:
        yield " ".join(path), parser
    for name, child in children.items():
        yield from leaf_commands(child, (*path, name))


def all_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for child in subparsers_of(parser).values():
        yield from all_parsers(child)


PARSER = build_parser()
COMMANDS = dict(leaf_commands(PARSER))


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS and a.dest not in ARGPARSE_OWN]


# --- what a command's code reads ------------------------------------------------------------------

def _is_ours(obj: Any) -> bool:
    return (inspect.isfunction(obj) or inspect.isclass(obj)) and (getattr(obj, "__module__", "") or "").startswith("longcurate")


def _local_imports(tree: ast.AST) -> dict[str, Any]:
    """Names bound by `from longcurate... import x` / `import longcurate...` inside a function."""
    names: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("longcurate"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                value = getattr(module, alias.name, None)
                if value is None:
                    value = importlib.import_module(f"{node.module}.{alias.name}")
                names[alias.asname or alias.name] = value
    return names


@cache
def _parsed(obj: Any) -> ast.AST | None:
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(obj)))
    except (OSError, TypeError):
        return None


def _reached(obj: Any, tree: ast.AST) -> Iterator[Any]:
    """The longcurate functions and classes `obj`'s code names."""
    module = inspect.getmodule(obj)
    scope = {**vars(module), **_local_imports(tree)}
    for node in ast.walk(tree):
        target = None
        if isinstance(node, ast.Name):
            target = scope.get(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            base = scope.get(node.value.id)
            if inspect.ismodule(base) and base.__name__.startswith("longcurate"):
                target = getattr(base, node.attr, None)
        if _is_ours(target):
            yield target
        if inspect.isclass(target) and _is_ours(target):  # its methods are its code
            yield from (m for m in vars(target).values() if inspect.isfunction(m))


@cache
def code_reads(func: Any) -> tuple[frozenset[str], frozenset[str]]:
    """(attribute names accessed, `args.<dest>` read) over the code `func` reaches."""
    seen: set[int] = set()
    attrs: set[str] = set()
    arg_reads: set[str] = set()
    todo = [func]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        tree = _parsed(obj)
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                attrs.add(node.attr)
                if isinstance(node.value, ast.Name) and node.value.id == "args":
                    arg_reads.add(node.attr)
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr" and len(node.args) >= 2 \
                    and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
                attrs.add(node.args[1].value)
                if getattr(node.args[0], "id", None) == "args":
                    arg_reads.add(node.args[1].value)
        todo.extend(_reached(obj, tree))
    return frozenset(attrs), frozenset(arg_reads)


# --- the tests ------------------------------------------------------------------------------------

def test_the_tree_has_the_commands_of_issues_12_and_15():
    assert {"eval probes", "eval needle", "eval longbench", "eval nll", "eval run", "select score cam",
            "select rank", "train fit", "synth run", "config show"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_flag_shows_its_default(name):
    parser = COMMANDS[name]
    helps = {a.option_strings[0]: a.help or "" for a in options(parser) if not a.required}  # required: no default
    missing = [flag for flag, text in helps.items() if "(default" not in text]
    assert not missing, f"`{name} --help`: no default shown for {missing}"
    text = " ".join(parser.format_help().split())
    assert all(f"{flag}" in text for flag in helps)


def unread_flags(parser: argparse.ArgumentParser) -> list[str]:
    """The flags `parser` lists that its command's code never reads."""
    attrs, arg_reads = code_reads(parser.get_default("func"))
    # Commands get their config class from the parser (`config_class`), not by naming it: its
    # methods (the run's layout) are reached through it.
    attrs |= code_reads(RunConfig.layout)[0]
    keys: dict[str, str] = parser.get_default("_flag_keys") or {}
    unread = []
    for action in options(parser):
        if action.dest in keys:
            if keys[action.dest].split(".")[-1] not in attrs:
                unread.append(f"{action.option_strings[0]} [{keys[action.dest]}]")
        elif action.dest != "config" and action.dest not in arg_reads:
            unread.append(action.option_strings[0])
    return unread


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_flag_is_read_by_its_command(name):
    assert COMMANDS[name].get_default("func") is not None, f"{name}: no command function"
    unread = unread_flags(COMMANDS[name])
    assert not unread, f"`{name} --help` lists flags the command never reads: {unread}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_override_example_is_one_of_the_commands_own_keys(name):
    parser = COMMANDS[name]
    overrides = next((a for a in parser._actions if a.dest == "overrides"), None)
    if overrides is None:
        return  # the command takes no key=value
    keys = set((parser.get_default("_flag_keys") or {}).values())
    if not keys:
        assert "e.g." not in (overrides.help or "")
        return
    example = overrides.help.split("e.g. ", 1)[1]
    key, value = example.split("=", 1)
    assert key in keys, f"{name}: the example {example!r} is not one of its own keys {sorted(keys)}"
    assert " " not in value and value != "None", f"{name}: {example!r} cannot be pasted as it stands"
    check_key(RunConfig, key, where="help example")


def test_examples_differ_between_stages_and_a_flag_is_shown_with_its_default():
    help_of = {n: " ".join(p.format_help().split()) for n, p in COMMANDS.items()}
    assert "e.g. eval." in help_of["eval run"] and "e.g. select." in help_of["select rank"]
    assert "(default: checkpoint,base)" in help_of["eval run"]
    lb = help_of["eval longbench"]
    assert "--label" in lb and "--max-new-tokens" in lb and "(default: the model's last path component)" in lb
    assert "--max-new-tokens" not in help_of["eval nll"] and "--max-new-tokens" not in help_of["eval build"]


def test_the_unread_check_can_fail():
    """The flags issue 15 found doing nothing are caught when put back (the check is not vacuous)."""
    from longcurate.core.cli import add_flag

    for name, flag, key in (("select rank", "--num-shards", "select.num_shards"),
                            ("select diagnose", "--num-shards", "select.num_shards"),
                            ("eval report", "--max-new-tokens", "eval.generate.max_new_tokens")):
        parser = argparse.ArgumentParser()
        parser.set_defaults(func=COMMANDS[name].get_default("func"))
        add_flag(parser, flag, key, "a flag this command does not use")
        parser.add_argument("--not-read", help="nor this")
        assert unread_flags(parser) == [f"{flag} [{key}]", "--not-read"], name


@pytest.mark.parametrize("parser", list(all_parsers(PARSER)), ids=lambda p: p.prog)
def test_every_help_renders(parser):
    assert parser.format_help()
