"""eval: VaL-style probes, needle in a haystack, LongBench, generation backends, report.

    longcurate eval build --length 2048 --positions 4           # probes.py (document / code / database), needle.py
    longcurate eval probes --model runs/demo/checkpoint         # runner.py + scoring.py
    longcurate eval needle --model smollm2-135m-instruct        # runner.py + needle.py
    longcurate eval longbench --data-dir DATA | --score-only PRED_DIR   # longbench*.py, metrics.py
    longcurate eval report runs/demo/eval/checkpoint runs/demo/eval/base
    longcurate eval run --config configs/demo.yaml              # stage.py: all of it for eval.models

Every kind predicts through one resumable, request-hashed loop (predict.py). Backends (generate.py):
`hf` (batched, left padding, greedy), `openai` (any compatible endpoint), `vllm` (when installed),
chosen by `eval.generate.backend`.
"""
