"""Helpers every stage's CLI uses: `--config FILE` + `key=value` overrides + everyday flags, resolved
into one typed config; comma-separated list arguments; logging; the one-line error. The CLI parses and
shows progress; the work is in plain functions.

Conventions every command follows:
- a flag is a shortcut for one config key (`add_flag`, `add_switch`) and wins over `key=value`;
- a user error raises `UserError` (or `ConfigError`); `longcurate.cli.main` prints it on one line and
  exits 2, so no command catches errors itself;
- config rules (defaults, `0 means none`, ...) live in the config dataclasses, never in a command.
"""

from __future__ import annotations

import argparse
import copy
import logging
import re
import sys
from pathlib import Path
from typing import Any, TypeVar

from longcurate.core.argv import leaf_of, respell, subparsers_of, unknown_flag_message
from longcurate.core.bundled import bundled_config, bundled_config_names
from longcurate.core.config import apply_overrides, build, check_key, load_yaml, parse_override, set_path
from longcurate.core.errors import ConfigError, UserError

C = TypeVar("C")


OVERRIDES_HELP = "config overrides in dotted form (any key; see `longcurate config show`)"


def add_config_args(parser: argparse.ArgumentParser, *, positional: bool = True) -> None:
    """`--config FILE` and `KEY=VALUE` overrides. A command whose own positional is a list (budget
    sizes, result folders) takes the overrides among those words (`positional=False`): they are told
    apart by their `key=` prefix (`parse_command_line`)."""
    parser.add_argument("--config", "-c", metavar="FILE.yaml",
                        help="YAML config: a file, or the name of a bundled one (demo, paper-7b, ...) "
                             "(default: none: the built-in defaults)")
    if positional:
        parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP)
    else:
        parser.set_defaults(overrides=[])


def document_defaults(parser: argparse.ArgumentParser, defaults: Any) -> None:
    """Write each flag's default (read from the config object `defaults`) into its help, and give each
    command an override example made from one of its own keys; recursive over subcommands."""
    keys: dict[str, str] = parser.get_default("_flag_keys") or {}
    for action in parser._actions:
        key = keys.get(action.dest)
        if key is not None and action.help and "default" not in action.help:
            value = _dotted(defaults, key)
            shown = "none" if value is None else (",".join(map(str, value)) if isinstance(value, list) else value)
            action.help = f"{action.help} (default: {shown})"
        if action.dest == "overrides" and keys:
            action.help = f"{OVERRIDES_HELP}, e.g. {override_example(keys.values(), defaults)}"
    for child in subparsers_of(parser).values():
        document_defaults(child, defaults)


def override_example(keys: Any, defaults: Any) -> str:
    """`key=value` for the first of a command's own keys that has a default, written as it is typed
    (`a.b=[x,y]`, `a.c=true`), so the example can be pasted as it stands."""
    keys = list(keys)
    key = next((k for k in keys if _dotted(defaults, k) is not None), keys[0])
    value = _dotted(defaults, key)
    if isinstance(value, list):
        return f"{key}=[{','.join(map(str, value))}]"
    if value is None or isinstance(value, bool):
        return f"{key}={'null' if value is None else str(value).lower()}"
    return f"{key}={value}"


def _dotted(obj: Any, key: str) -> Any:
    for part in key.split("."):
        obj = getattr(obj, part, None)
    return obj


def add_flag(parser: argparse.ArgumentParser, flag: str, key: str, help: str, type: Any = str, **kw: Any) -> None:
    """A flag that is a shortcut for the config key `key` (flags win over key=value overrides)."""
    dest = flag.lstrip("-").replace("-", "_")
    parser.add_argument(flag, dest=dest, type=type, default=None, help=f"{help} [{key}]", **kw)
    flags = parser.get_default("_flag_keys") or {}
    flags[dest] = key
    parser.set_defaults(_flag_keys=flags)


_OVERRIDE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*=")


def is_override(word: str) -> bool:
    """Whether a command-line word is a `key=value` override (`a.b=c`), not a path or a value."""
    return bool(_OVERRIDE.match(word))


def parse_command_line(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """`parser.parse_args` for the command line as people type it: global flags anywhere, Hugging
    Face and underscore spellings read as this command's flags or config keys (`core.argv.respell`;
    the notes land in `args.respelled`), a mistyped flag answered with a did-you-mean, and `key=value`
    overrides anywhere among the command's words (argparse stops filling a positional list at the
    first flag, so words after one are gathered here)."""
    found = leaf_of(parser, argv)
    leaf, notes = parser, []
    if found is not None:
        leaf, start = found
        try:
            own, notes = respell(leaf, argv[start:])
        except ConfigError as e:
            leaf.error(str(e))
        unknown = next((w for w in own if not _known_flag(leaf, w)), None)
        if unknown is not None:
            leaf.error(unknown_flag_message(leaf, unknown, parser.get_default("config_class")))
        argv = argv[:start] + own
    args, extra = parser.parse_known_args(argv)
    _gather_words(leaf, args, extra)
    args.respelled = notes
    return args


def _known_flag(parser: argparse.ArgumentParser, word: str) -> bool:
    """False for a word that is a flag the command does not take (an unambiguous prefix of one of its
    long flags counts, as argparse reads it); True for anything else (a value, a positional, `-5`)."""
    if not word.startswith("-") or word == "-" or re.match(r"^-\d", word):
        return True
    name = word.split("=", 1)[0]
    options = parser._option_string_actions
    return name in options or (name.startswith("--") and sum(o.startswith(name) for o in options) == 1)


def _gather_words(leaf: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str]) -> None:
    """Put every `key=value` word among the command's positionals into `args.overrides`, the other
    words left over after a flag into its list positional, and a positional CONFIG (`run demo`) into
    `--config`; anything else left over is the usual usage error."""
    if not hasattr(args, "overrides"):
        if extra:
            leaf.error(f"unrecognized arguments: {' '.join(extra)}")
        return
    positionals = [a for a in leaf._actions if not a.option_strings and a.dest != "overrides"]
    lists = [a.dest for a in positionals if a.nargs in ("*", "+")]
    many = [a for a in leaf._actions if a.option_strings and a.nargs in ("*", "+")]  # `--train A B k=v`
    overrides = []
    for action in [*positionals, *many]:  # a single word (`synth report k=v`, `run k=v`) or a list's words
        value = getattr(args, action.dest, None)
        if isinstance(value, str) and _is_override_word(value):
            overrides.append(value)
            setattr(args, action.dest, None)
        elif isinstance(value, list):
            overrides += [w for w in value if _is_override_word(w)]
            setattr(args, action.dest, [w for w in value if not _is_override_word(w)])
    overrides += list(args.overrides or []) + [w for w in extra if _is_override_word(w)]
    rest = [w for w in extra if not _is_override_word(w)]
    if rest and lists:
        setattr(args, lists[0], getattr(args, lists[0]) + rest)
    elif rest:
        leaf.error(f"unrecognized arguments: {' '.join(rest)} (config overrides are written key=value)")
    if getattr(args, "config_file", None) and not args.config:
        args.config = args.config_file
    args.overrides = overrides


def _is_override_word(word: str) -> bool:
    return is_override(word) and not word.endswith((".yaml", ".yml"))


def add_switch(parser: argparse.ArgumentParser, flag: str, key: str, help: str) -> None:
    """An on/off flag that sets the boolean config key `key` to true."""
    dest = flag.lstrip("-").replace("-", "_")
    parser.add_argument(flag, dest=dest, action="store_const", const=True, default=None, help=f"{help} [{key}]")
    flags = dict(parser.get_default("_flag_keys") or {})
    flags[dest] = key
    parser.set_defaults(_flag_keys=flags)


def comma_words(text: str) -> list[str]:
    """`a, b,c` -> ["a", "b", "c"] (empty items dropped)."""
    return [x.strip() for x in text.split(",") if x.strip()]


def comma_ints(text: str) -> list[int]:
    return [int(x) for x in comma_words(text)]


def comma_floats(text: str) -> list[float]:
    return [float(x) for x in comma_words(text)]


def resolve(args: argparse.Namespace, config_cls: type[C]) -> C:
    """YAML -> key=value overrides -> flags, built into `config_cls` (unknown keys are errors)."""
    config_file = find_config(getattr(args, "config", None))
    data: dict[str, Any] = {}
    if config_file is not None:
        data = resolve_input_paths(load_yaml(config_file), config_file.parent,
                                   getattr(config_cls, "INPUT_PATHS", ()))
    overrides = list(getattr(args, "overrides", None) or [])
    flag_values: dict[str, Any] = {}
    for dest, key in (getattr(args, "_flag_keys", None) or {}).items():
        value = getattr(args, dest, None)
        if isinstance(value, list):  # a many-valued flag (`--long A B`) also swallows `key=value` after it
            overrides += [v for v in value if is_override(str(v))]
            value = [v for v in value if not is_override(str(v))] or None
        if value is not None:
            flag_values[key] = value
    if config_file is not None:
        build(config_cls, data, where=str(config_file))  # the file's own mistakes, named by the file
    for item in overrides:
        check_key(config_cls, ".".join(parse_override(item)[0]), where=f"command line override {item!r}")
    data = apply_overrides(data, overrides)
    for key, value in flag_values.items():
        set_path(data, key, value)
    return build(config_cls, data,
                 where="command line" if (overrides or flag_values) else str(config_file or "defaults"))


def resolve_config(args: argparse.Namespace) -> Any:
    """The command's run config: YAML, then `key=value` overrides, then flags. The composition root
    (`longcurate.cli.build_parser`) names the config class on the parser (`config_class`), so a stage's
    CLI resolves the whole run config without importing the root config module."""
    config_cls = getattr(args, "config_class", None)
    if config_cls is None:
        raise RuntimeError("the parser names no config_class (build it with longcurate.cli.build_parser)")
    return resolve(args, config_cls)


def find_config(name: str | None) -> Path | None:
    """A config file by path, or by the name of a bundled one (`demo`, `paper-7b`, ...)."""
    if not name:
        return None
    path = Path(name)
    if path.exists() or path.suffix in (".yaml", ".yml") and not bundled_config(path.name):
        return path  # (a missing file is reported by load_yaml, naming it)
    found = bundled_config(name)
    if found is None:
        raise ConfigError(f"config not found: {name} (a YAML file, or one of the bundled configs: "
                          f"{', '.join(bundled_config_names())})")
    return found


def resolve_input_paths(data: dict[str, Any], folder: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """Relative input paths in a config file name files beside the config: `train.mix.short:
    data/chat.jsonl` in `cfgs/x.yaml` reads `cfgs/data/chat.jsonl`, from any working folder. A value
    that names nothing there (a model alias, a Hub id, a path relative to where you run) is kept.
    The result is given relative to the working folder when it lies inside it, so outputs that record
    input paths stay the same for a run from the repository root."""
    def fix(value: Any) -> Any:
        if isinstance(value, list):
            return [fix(v) for v in value]
        if not isinstance(value, str) or not value or Path(value).is_absolute():
            return value
        candidate = (folder / value).resolve()
        if not candidate.exists():
            return value
        try:
            return str(candidate.relative_to(Path.cwd().resolve()))
        except ValueError:
            return str(candidate)

    out = copy.deepcopy(data)
    for key in keys:
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and parts[-1] in node:
            node[parts[-1]] = fix(node[parts[-1]])
    return out


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)
    for noisy in ("httpx", "httpx2", "urllib3", "filelock", "datasets", "openai", "httpcore", "httpcore2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str) -> int:
    print(f"longcurate: error: {message}", file=sys.stderr)
    return 2


__all__ = ["add_config_args", "resolve_config", "add_flag", "document_defaults", "subparsers_of", "add_switch", "comma_words", "comma_ints", "comma_floats", "resolve",
           "setup_logging", "fail", "ConfigError", "UserError"]
