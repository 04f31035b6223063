"""ablate: does the selection help? Every arm (GATEAU, its baselines, an oracle, a positive control,
the whole pool, no long data) x seed, with the random arms drawn several times, trained on one scored
pool and evaluated on the same held-out items, with cluster-bootstrap intervals.

    longcurate ablate configs/ablation-cpu.yaml         # stage.py: pool -> arms -> runs -> report

arms.py (each arm's long samples; control.py the answer-swap control), runs.py (one run folder per
arm, draw and seed, through the train and eval stages), outcomes.py (per-item results), analysis.py
(statistics, from core.replication), report.py, report_tables.py and plots.py (report.md, report.json,
PNGs). This package is part of the composition root: it calls the stages' public functions; no stage
imports it.
"""
