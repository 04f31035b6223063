"""The report: figures have labelled axes, legends and colour bars; PNGs open; tables list every task."""

from __future__ import annotations

import json

import pytest

from longcurate.eval import report, scoring


def _results(tmp_path, label, shift, failures=()):
    items = [{"task": t, "set_id": s, "position_id": p, "score": max(0.0, min(1.0, 0.2 * p + shift))}
             for t in ("document", "code", "database") for s in (0, 1) for p in range(4)]
    probes = {"kind": "probes", "model": label, "n_items": len(items), "n_scored": len(items),
              "n_failed": len(failures), "failures": list(failures), **scoring.aggregate_probes(items, span=2)}
    needle = {"kind": "needle", "model": label, "n_items": 4, "n_scored": 4, "n_failed": 0, "failures": [],
              **scoring.aggregate_needle([{"length": L, "depth": d, "score": shift + (d == 0) * 0.5}
                                          for L in (256, 512) for d in (0.0, 100.0)])}
    folder = tmp_path / label
    for kind, res in (("probes", probes), ("needle", needle)):
        (folder / kind).mkdir(parents=True)
        (folder / kind / "results.json").write_text(json.dumps(res))
    return report.load_results(folder, label)


@pytest.fixture
def two_models(tmp_path):
    return [_results(tmp_path, "checkpoint", 0.3, failures=[{"id": "code-s0-p1", "error": "prompt too long"}]),
            _results(tmp_path, "base", 0.1)]


def test_probe_figure_axes_and_legend(two_models):
    import matplotlib.pyplot as plt

    fig = report.probe_figure(two_models, "code")
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("key position") and ax.get_ylabel() == "score (%)"
    assert "code" in ax.get_title()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(legend) == 2 and legend[0].startswith("checkpoint") and legend[1].startswith("base")
    ys = ax.get_lines()[0].get_ydata()
    assert list(ys) == [pytest.approx(100 * x) for x in (0.3, 0.5, 0.7, 0.9)]
    plt.close(fig)


def test_needle_figure_axes_and_colorbar(two_models):
    import matplotlib.pyplot as plt

    fig = report.needle_figure(two_models[0])
    ax, cax = fig.axes
    assert ax.get_xlabel() == "haystack length (tokens)" and ax.get_ylabel() == "needle depth"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["256", "512"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0%", "100%"]
    assert "recall" in cax.get_ylabel()
    assert "checkpoint" in ax.get_title()
    plt.close(fig)


def test_write_report_pngs_open_and_tables_list_every_task(two_models, tmp_path):
    from PIL import Image

    path = report.write_report(two_models, tmp_path / "out")
    text = path.read_text()
    for task in ("document", "code", "database"):
        assert f"{task} avg / gap" in text
        png = tmp_path / "out" / "plots" / f"probe_{task}.png"
        assert f"(plots/probe_{task}.png)" in text
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size[0] > 300
    for label in ("checkpoint", "base"):
        with Image.open(tmp_path / "out" / "plots" / f"needle_{label}.png") as im:
            assert im.format == "PNG"
        assert f"| {label} |" in text
    # checkpoint: code spans {0,1}: (0.3+0.5)/2 = 0.4, {2,3}: (0.7+0.9)/2 = 0.8 -> avg 60.0, gap 40.0
    assert "| checkpoint | 60.0 / 40.0 | 60.0 / 40.0 | 60.0 / 40.0 | 60.0 / 40.0 | 24 (1) |" in text
    assert "| 0% | 80.0 | 80.0 |" in text
    assert "## Failed items" in text and "code-s0-p1" in text


def test_report_is_deterministic(two_models, tmp_path):
    a = report.write_report(two_models, tmp_path / "a")
    b = report.write_report(two_models, tmp_path / "b")
    assert a.read_text() == b.read_text()
    for name in ("probe_code.png", "needle_base.png"):
        assert (tmp_path / "a" / "plots" / name).read_bytes() == (tmp_path / "b" / "plots" / name).read_bytes()


def test_load_results_needs_something(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no probes"):
        report.load_results(tmp_path / "empty")
