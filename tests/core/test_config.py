from dataclasses import dataclass, field

import pytest

from longcurate.config import RunConfig
from longcurate.core.config import ConfigError, apply_overrides, build, dump_yaml, load_yaml, to_dict


@dataclass
class Inner:
    k: int = 1
    names: list[str] = field(default_factory=list)


@dataclass
class Outer:
    a: float = 0.5
    flag: bool = False
    name: str | None = None
    inner: Inner = field(default_factory=Inner)


def test_overrides_parse_yaml_values():
    data = apply_overrides({"inner": {"k": 1}}, ["inner.k=3", "a=0.25", "flag=true", "inner.names=[x, y]"])
    cfg = build(Outer, data)
    assert cfg == Outer(a=0.25, flag=True, inner=Inner(k=3, names=["x", "y"]))


def test_unknown_key_names_path_and_file():
    with pytest.raises(ConfigError, match=r"my.yaml: unknown key\(s\) 'inner.kk'"):
        build(Outer, {"inner": {"kk": 1}}, where="my.yaml")


def test_type_errors():
    with pytest.raises(ConfigError, match="'inner.k' must be an integer"):
        build(Outer, {"inner": {"k": "three"}})
    with pytest.raises(ConfigError, match="'flag' must be true or false"):
        build(Outer, {"flag": "yes please"})
    with pytest.raises(ConfigError, match="not of the form key=value"):
        apply_overrides({}, ["novalue"])


def test_roundtrip_through_yaml(tmp_path):
    cfg = build(RunConfig, {"seed": 3, "synth": {"num_samples": 7}})
    p = tmp_path / "c.yaml"
    p.write_text(dump_yaml(cfg))
    again = build(RunConfig, load_yaml(p))
    assert to_dict(again) == to_dict(cfg)


def test_float_keys_accept_exponents_without_a_dot():
    """YAML 1.1 reads `2e-5` as a string; a float key takes it as the number it means."""
    from dataclasses import dataclass

    from longcurate.core.config import ConfigError, apply_overrides, build

    @dataclass
    class Opt:
        lr: float = 1.0

    assert build(Opt, apply_overrides({}, ["lr=2e-5"])).lr == 2e-5
    with pytest.raises(ConfigError, match="lr"):
        build(Opt, {"lr": "fast"})
