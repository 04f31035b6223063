"""eval: a registry of tasks (probes, needle, nll, longbench, longbench-chat) run through one model
interface, one step per output, and a report.

    longcurate eval build --length 2048 --positions 4           # items.py: probes.py, needle.py
    longcurate eval probes --model runs/demo/checkpoint         # retrieval.py + scoring.py
    longcurate eval needle --model smollm2-135m-instruct        # retrieval.py + needle.py
    longcurate eval nll --model runs/demo/checkpoint            # nll.py (the model's log-likelihood)
    longcurate eval longbench --data-dir DATA | --score-only PRED_DIR   # longbench*.py, metrics.py
    longcurate eval report runs/demo/eval/checkpoint runs/demo/eval/base   # report.py, sections.py
    longcurate eval run --config configs/demo.yaml              # stage.py: eval.run's tasks for eval.models

`tasks.py` declares each task (what it needs from the model, its files, its metrics with direction and
aggregation); `model.py` is the model interface, `generate` and `loglikelihood`, served by `hf`,
`openai` (any compatible endpoint) or `vllm` (when installed), chosen by `eval.generate.backend`.
Generation goes through one resumable, request-hashed loop (predict.py); every output is a step of
`core.runner` (locked, skipped when complete, incomplete while items are left).
"""
