"""select: GATEAU scoring (HMG + CAM), ranking, budgets, baselines and diagnostics."""
