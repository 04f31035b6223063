"""The GPU check (benchmarks/gpu_check.py) in parts: each module measures one stage's GPU path, and
`runner` runs every part in its own forked process under a time limit, so one failure, hang or
CUDA error never takes the others with it. See docs/gpu.md."""
