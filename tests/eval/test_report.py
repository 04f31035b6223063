"""The report: figures have labelled axes, legends and colour bars; PNGs open; tables list every task."""

from __future__ import annotations

import json

import pytest

from longcurate.eval import plots, report, scoring
from longcurate.eval.results import load_results
from longcurate.eval.sections import ci


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
    return load_results(folder, label)


@pytest.fixture
def two_models(tmp_path):
    return [_results(tmp_path, "checkpoint", 0.3, failures=[{"id": "code-s0-p1", "error": "prompt too long"}]),
            _results(tmp_path, "base", 0.1)]


def test_probe_figure_axes_and_legend(two_models):
    import matplotlib.pyplot as plt

    fig = plots.probe_figure(two_models, "code")
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

    fig = plots.needle_figure(two_models[0])
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
    assert "| model | document | code | database | all items | items (failed) |" in text
    for task in ("document", "code", "database"):
        png = tmp_path / "out" / "plots" / f"probe_{task}.png"
        assert f"(plots/probe_{task}.png)" in text
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size[0] > 300
    for label in ("checkpoint", "base"):
        with Image.open(tmp_path / "out" / "plots" / f"needle_{label}.png") as im:
            assert im.format == "PNG"
        assert f"| {label} |" in text
    # checkpoint: every task's items score 0.3, 0.5, 0.7, 0.9 in each set: mean 60.0 with its interval
    e = scoring.interval([0.3, 0.5, 0.7, 0.9] * 2)
    cell = f"{100 * e['mean']:.1f} [{100 * e['low']:.1f}, {100 * e['high']:.1f}]"
    assert cell.startswith("60.0 [") and e["low"] < 0.6 < e["high"]
    all_items = scoring.interval([0.3, 0.5, 0.7, 0.9] * 6)
    assert (f"| checkpoint | {cell} | {cell} | {cell} | {ci(all_items)} | 24 (1) |") in text
    # the gap (descriptive): code spans {0,1}: (0.3+0.5)/2 = 0.4, {2,3}: (0.7+0.9)/2 = 0.8 -> 40.0
    assert "| checkpoint | 40.0 | 40.0 | 40.0 | 40.0 |" in text
    assert "| 0% | 80.0 | 80.0 |" in text
    assert text.splitlines()[2].startswith("**Contamination:** not checked")
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
        load_results(tmp_path / "empty")


def test_nll_position_figure_has_interval_error_bars(tmp_path):
    import matplotlib.pyplot as plt

    from longcurate.eval import nll

    recs = [{"id": f"p{i}", "source": "probe", "task": "document", "position": i / 10, "nll": 1.0 + (i % 3),
             "n_tokens": 5} for i in range(10)]
    recs += [{"id": f"h{i}", "source": "heldout", "task": "fine", "position": 0.95, "nll": 2.0 + i, "n_tokens": 5}
             for i in range(3)]
    folder = tmp_path / "m" / "nll"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"n_scored": 13, "n_failed": 0, "failures": [],
                                                     **nll.aggregate_nll(recs, buckets=5)}))
    res = load_results(tmp_path / "m", "trained")
    fig = plots.nll_position_figure(res)
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("evidence position") and "NLL" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["heldout (3 items)", "probe (10 items)"]
    bars = [c for c in ax.containers if c.__class__.__name__ == "ErrorbarContainer"]
    assert len(bars) == 2
    probe_line = bars[1].lines[0]
    assert list(probe_line.get_xdata()) == pytest.approx([0.1, 0.3, 0.5, 0.7, 0.9])  # bucket centres
    cells = res.get("nll")["by_position"]["probe"]
    assert list(probe_line.get_ydata()) == [c["mean"] for c in cells]
    plt.close(fig)
    text = report.markdown([res], {"nll_trained": "plots/x.png"})
    assert "## Answer NLL" in text and "| trained | 0–0.2 |" not in text
    assert "| model | source | 0–0.2 | 0.2–0.4 | 0.4–0.6 | 0.6–0.8 | 0.8–1 |" in text
    assert f"| trained | heldout | – | – | – | – | {ci(res.get('nll')['by_position']['heldout'][4], 1, 3)} |" in text


# --- LongBench-Chat and the needle's judge rating -------------------------------------------------

CHAT_RATINGS = [8, 7.5, 6, 9]  # rated cases; case 5's replies held no rating, case 6 was not sent


def _write_chat(folder, judge_model="gpt-4"):
    cases = [{"idx": i + 1, "query": f"q{i + 1}", "rating": r, "status": "ok"} for i, r in enumerate(CHAT_RATINGS)]
    cases += [{"idx": 5, "query": "q5", "rating": None, "status": "failed"},
              {"idx": 6, "query": "q6", "rating": None, "status": "pending", "error": "request failed"}]
    result = {"benchmark": "LongBench-Chat", "score": 10 * sum(CHAT_RATINGS) / 4, "n_cases": 6, "n_rated": 4,
              "n_failed": 1, "n_pending": 1, "n_missing": 0, "judge": {"model": judge_model}, "cases": cases}
    (folder / "longbench-chat").mkdir(parents=True)
    (folder / "longbench-chat" / "result.json").write_text(json.dumps(result))


def _cell(values, digits=2):
    """The report's `mean [low, high]`, computed here straight from core.stats."""
    from longcurate.core.stats import bootstrap_mean

    e = bootstrap_mean(values)
    assert e.low < e.mean < e.high
    return f"{e.mean:.{digits}f} [{e.low:.{digits}f}, {e.high:.{digits}f}]"


def _section(text, title):
    lines = text.split("\n")
    start = lines.index(title)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start:end])


def test_longbench_chat_section_scores_rated_cases_with_interval(two_models, tmp_path):
    plain = report.markdown(two_models, {})
    _write_chat(tmp_path / "checkpoint")
    results = [load_results(tmp_path / "checkpoint", "checkpoint"), two_models[1]]
    text = report.markdown(results, {})
    cell = _cell([80.0, 75.0, 60.0, 90.0])
    assert cell.startswith("76.25 [")  # the result's score: failed and pending cases are not 0s
    section = _section(text, "## LongBench-Chat")
    assert f"| checkpoint | {cell} | 4 (1), 1 pending | gpt-4 |" in section
    assert "| model | score | rated (failed) | judge |" in section and "| base |" not in section
    # the section is all that changed; a report without the result has none of it
    assert "LongBench-Chat" not in plain
    assert text.replace(section + "\n", "") == plain


def test_longbench_chat_alone_is_a_result_folder(tmp_path):
    _write_chat(tmp_path / "m", judge_model="local-judge")
    res = load_results(tmp_path / "m")
    assert res.get("probes") is None and res.get("needle") is None and res.get("longbench-chat")["n_rated"] == 4
    text = report.write_report([res], tmp_path / "out").read_text()
    assert f"| m | {_cell([80.0, 75.0, 60.0, 90.0])} | 4 (1), 1 pending | local-judge |" in text
    assert "## Needle" not in text and "## VaL" not in text and not (tmp_path / "out" / "plots").exists()


def test_needle_judge_column_and_grid(two_models, tmp_path):
    plain = report.markdown(two_models, {})
    needle_file = tmp_path / "checkpoint" / "needle" / "results.json"
    needle = json.loads(needle_file.read_text())
    rated = [{"length": L, "depth": d, "score": s} for (L, d), s in
             zip([(256, 0.0), (512, 0.0), (256, 100.0), (512, 100.0)], [9, 10, 3, 4])]
    needle["judge"] = {**scoring.aggregate_needle(rated), "n_rated": 4, "n_failed": 1, "n_pending": 0,
                       "judge": {"model": "gpt-4"}}
    needle_file.write_text(json.dumps(needle))
    text = report.markdown([load_results(tmp_path / "checkpoint", "checkpoint"), two_models[1]], {})
    section = _section(text, "## Needle in a haystack")
    assert "| model | recall | items (failed) | judge rating (1-10) | rated (failed) | judge |" in section
    recall = ci(needle["mean"])
    assert f"| checkpoint | {recall} | 4 (0) | {_cell([9.0, 10.0, 3.0, 4.0])} | 4 (1) | gpt-4 |" in section
    assert f"| base | {ci(two_models[1].get('needle')['mean'])} | 4 (0) | – | – | – |" in section
    grid = section.split("**checkpoint**, judge rating (1-10)")[1]
    assert "| 0% | 9.0 | 10.0 |" in grid and "| 100% | 3.0 | 4.0 |" in grid
    assert "judge rating" not in section.split("**base**")[1]
    # without a judge the needle section has none of this
    plain_needle = _section(plain, "## Needle in a haystack")
    assert "judge" not in plain_needle.lower()
    assert "| model | recall | items (failed) |\n" in plain_needle
    assert text.replace(section, "") == plain.replace(plain_needle, "")
