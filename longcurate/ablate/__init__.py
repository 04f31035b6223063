"""ablate: does the selection help? Every arm (GATEAU, its baselines, the whole pool, no long data) x
seed trained on one scored pool and evaluated on the same held-out items, with confidence intervals.

    longcurate ablate configs/ablation-cpu.yaml         # stage.py: pool -> arms -> runs -> report

arms.py (each arm's long samples), runs.py (one run folder per arm and seed, through the train and
eval stages), outcomes.py (per-item results), analysis.py (intervals, paired tests), report.py and
plots.py (report.md, report.json, PNGs). This package is part of the composition root: it calls
the stages' public functions; no stage imports it.
"""
