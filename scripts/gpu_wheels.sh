#!/usr/bin/env bash
# The Python packages the GPU machine's image lacks, as wheels in .whl/ (git-ignored, <= 40 MB), for a
# machine that reaches no package index. Run it here (pip reaches PyPI), carry .whl/ to the GPU machine;
# benchmarks/gpu_check.py installs them there itself when `datasets` or `deepspeed` is missing:
#
#   python3 -m pip install --no-index --no-deps --target DIR --find-links .whl -r .whl/requirements.txt
#
# The image (docs/gpu.md) has torch 2.11, transformers 5.17, accelerate, pyarrow, pandas, xxhash, numpy,
# pyyaml, fsspec, huggingface-hub, psutil, ninja, py-cpuinfo, nvidia-ml-py; it lacks datasets (+ dill,
# multiprocess) and deepspeed (+ hjson, pydantic and its helpers). einops and msgpack come too although
# the image has them: with torch they are all `import deepspeed` needs, so the folder imports on any
# machine with torch (the venv of `make install` has neither). Versions are the ones `make install`
# brings (the test suite runs them); einops and msgpack are the ones `pip install deepspeed` brings.
#
# Three packages are specific to a Python version: multiprocess (pure Python, one wheel per version),
# pydantic-core and msgpack (compiled). Their wheels are fetched for the GPU image's Python (GPU_PYTHON, 3.12) and
# for the Python running this script, side by side; pip's --find-links picks the one that fits, which is
# why the install names requirements.txt rather than globbing .whl/*.whl. DeepSpeed ships only as a
# source archive: it is built here into a pure-Python wheel without compiled ops (DS_BUILD_OPS=0); the
# project's DeepSpeed configs use the Trainer's torch AdamW, so no op is compiled at run time either.
#
#   scripts/gpu_wheels.sh                      # into .whl/
#   GPU_PYTHON=3.11 WHEEL_DIR=/tmp/w scripts/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
DEST=${WHEEL_DIR:-.whl}
GPU_PYTHON=${GPU_PYTHON:-3.12}
HERE_PYTHON=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
MAX_MB=40

PURE="datasets==5.2.0 dill==0.4.1 hjson==3.1.0 pydantic==2.14.4 annotated-types==0.8.0 typing-inspection==0.4.5
      typing-extensions==4.16.0 einops==0.8.2"
PER_PYTHON="multiprocess==0.70.19 pydantic-core==2.50.5 msgpack==1.2.4"
DEEPSPEED="deepspeed==0.19.8"
PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"

rm -rf "$DEST"
mkdir -p "$DEST"
pip_quiet() { "$PY" -m pip "$@" --disable-pip-version-check -q; }

# shellcheck disable=SC2086  # word splitting of the package lists is intended
pip_quiet download --no-deps --only-binary=:all: -d "$DEST" $PURE
for version in $(printf '%s\n' "$GPU_PYTHON" "$HERE_PYTHON" | sort -u); do
  # shellcheck disable=SC2086
  pip_quiet download --no-deps --only-binary=:all: --python-version "$version" --implementation cp $PLATFORMS \
    -d "$DEST" $PER_PYTHON
done
# Built with this interpreter's torch (needed by DeepSpeed's setup.py); DS_ACCELERATOR=cuda records the
# CUDA op list (all "not installed", compiled on first use if a config ever asks for one).
DS_ACCELERATOR=cuda DS_BUILD_OPS=0 pip_quiet wheel --no-deps --no-build-isolation --no-cache-dir -w "$DEST" "$DEEPSPEED"

echo "$PURE $PER_PYTHON $DEEPSPEED" | tr -s ' \n' '\n' | sed '/^$/d' > "$DEST/requirements.txt"
size_kb=$(du -sk "$DEST" | cut -f1)
ls -l "$DEST"
echo "gpu_wheels: $(ls "$DEST"/*.whl | wc -l) wheels, $((size_kb / 1024)) MB in $DEST (Python $GPU_PYTHON and $HERE_PYTHON)"
if [ "$size_kb" -gt $((MAX_MB * 1024)) ]; then
  echo "gpu_wheels: $DEST is over $MAX_MB MB" >&2
  exit 1
fi
