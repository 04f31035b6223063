"""FILM's VaL scoring, written straight from the released `VaLProbing/plot.py` (its loops, its
`range(span_start, span_end)` with `span_end = span_start + span_len - 1`, its `np.std`), for one task
and one model, without the plotting. Used only by tests to check `longcurate eval val`."""

from __future__ import annotations

import json

import numpy as np


def _pred(pred_info, gpt4):
    return pred_info["sample"] if gpt4 else pred_info["samples"][0]


def _hit(task, pred, label_info):
    if task == "document":
        gt_words = set(label_info["gt"].strip().lower().split())
        pred_words = set(pred.strip().lower().split())
        return len(gt_words & pred_words) / len(gt_words)
    if task == "code":
        return 1 if label_info["gt"].strip(".") in pred else 0
    gt_label, gt_description = label_info["gt_label"], label_info["gt_description"]
    return 1 if gt_label.strip(".").lower() in pred.lower() or gt_description.strip(".").lower() in pred.lower() else 0


def released_scores(task, data_path, skip_path, pred_path, total_len, set_count, span_len=50, gpt4=False):
    """(long avg, max-min gap, span means, span stds), as plot.py prints and plots them (fractions)."""
    span_num = int(total_len / span_len)
    set_ids = ["set_" + str(i) for i in range(set_count)]
    label_infos = []
    with open(data_path, encoding="utf-8") as f:
        for line in f.readlines():
            info = json.loads(line)
            entry = {"position_id": info["position_id"], "set_id": "set_" + str(info["set_id"])}
            if task == "database":
                entry.update(gt_label=info["label"], gt_description=info["description"])
            else:
                entry.update(gt=info["completion"])
            label_infos.append(entry)
    with open(skip_path, encoding="utf-8") as f:
        skip_list = json.load(f)
    acc = {s: {i: [] for i in range(total_len)} for s in set_ids}
    with open(pred_path, encoding="utf-8") as f:
        pred_infos = [json.loads(line) for line in f.readlines()]
    for idx, (pred_info, label_info) in enumerate(zip(pred_infos, label_infos)):
        if idx in skip_list:
            continue
        acc[label_info["set_id"]][label_info["position_id"]].append(_hit(task, _pred(pred_info, gpt4), label_info))
    per_set = {}
    for s in set_ids:
        per_set[s] = []
        for i in range(span_num):
            span_start = span_len * i
            span_end = span_len * i + span_len - 1
            accs = []
            for position_id in range(span_start, span_end):
                accs += acc[s][position_id]
            per_set[s].append(sum(accs) / len(accs))
    span_acc_list, span_std_list = [], []
    for i in range(span_num):
        accs = [per_set[s][i] for s in set_ids]
        span_acc_list.append(sum(accs) / len(accs))
        span_std_list.append(float(np.std(np.array(accs))))
    long_acc = sum(span_acc_list) / len(span_acc_list)
    return long_acc, max(span_acc_list) - min(span_acc_list), span_acc_list, span_std_list
