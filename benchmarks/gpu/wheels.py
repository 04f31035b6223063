"""Installs the wheels scripts/gpu_wheels.sh put in .whl/ on a machine set up without `make install`:
the GPU image has no `datasets` and no `deepspeed`, and reaches no package index. `auto` installs only
when `datasets` (a dependency of the project) is missing, so a `make install` environment is left as it
is: there DeepSpeed without its own dependencies (einops, msgpack, ...) would break accelerate's import
of it, and `pip install -e ".[deepspeed]"` is the way to add it.

`pip install --no-index --no-deps --target SITE --find-links .whl -r .whl/requirements.txt`: the folder
holds the Python-specific wheels (multiprocess, pydantic-core) for more than one Python, and pip picks
the one that fits this interpreter. SITE goes first on sys.path and on PYTHONPATH, so the child
processes the check launches (torchrun) see the same packages.

SITE's path must contain `site-packages`: `datasets` fingerprints a dataset by pickling with dill, and
dill pickles a module's globals by value (and fails on pyarrow's types) unless the module's file lies
under sys.prefix or on a path containing `site-packages`; `Dataset.from_dict` then raises
"PicklingError: Can't pickle <class 'MonthDayNano'>".
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

NEEDED = ("datasets", "deepspeed")


def missing_modules() -> list[str]:
    return [m for m in NEEDED if importlib.util.find_spec(m) is None]


def install_wheels(wheel_dir: Path, site: Path, mode: str = "auto") -> dict:
    """`mode`: auto (install when `datasets` is missing), always, never. Returns what happened."""
    if "site-packages" not in str(site):
        raise ValueError(f"--site {site}: the path must contain 'site-packages' (datasets' hashing needs it)")
    requirements = wheel_dir / "requirements.txt"
    missing = missing_modules()
    if mode == "never" or (mode == "auto" and "datasets" not in missing):
        return {"installed": False, "missing_before": missing}
    if not requirements.exists():
        return {"installed": False, "missing_before": missing,
                "note": f"{requirements} not found: run scripts/gpu_wheels.sh where pip reaches PyPI, carry .whl/"}
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--upgrade",
           "--disable-pip-version-check", "--target", str(site), "--find-links", str(wheel_dir),
           "-r", str(requirements)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:  # the parts that need the packages fail and say so; the others still run
        return {"installed": False, "missing_before": missing, "error": (done.stderr or done.stdout)[-2000:]}
    sys.path.insert(0, str(site))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
    importlib.invalidate_caches()
    return {"installed": True, "site": str(site), "missing_before": missing, "missing_after": missing_modules(),
            "requirements": requirements.read_text().split()}
