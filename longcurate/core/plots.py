"""Matplotlib without a display, and PNGs saved with fixed metadata (the same figure gives the same
bytes), for any stage's report."""

from __future__ import annotations

from pathlib import Path

from longcurate.core.jsonl import atomic_open


def mpl():
    """`matplotlib.pyplot` on the Agg backend (imported on first use: it is slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: Path, dpi: int = 110) -> None:
    """Write the figure atomically as a PNG without a timestamp, and close it."""
    plt = mpl()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)


__all__ = ["mpl", "save_png"]
