#!/usr/bin/python3
"""Chooses the policy knobs on the calibration text (never on the held-out text the results are
reported on, DESIGN.md section 8): runs the tuning sweeps of configs/tuning/ with wdmoe-sweep and
applies each knob's rule to their results.

Usage: tune_policies.py [--jobs N] [--bin DIR] [--out DIR] [--configs DIR]

  --jobs N      wdmoe-run processes at a time (default: the cores)
  --bin DIR     where wdmoe-sweep, wdmoe-run and wdmoe-compare are (default: build/bin;
                ./wdmoe tune builds them first)
  --out DIR     the results folder (default: results/tuning)
  --configs DIR the tuning sweep files (default: configs/tuning)

Every tuning sweep scores the calibration text (workload.purpose "tuning") on the policy
comparison's cell, with every knob but the swept one at configs/policies.json's shared value.
The rules (a "loss" is the perplexity change against the knob's neutral value, paired by token;
a setting is "within the budget" when the 95 % interval's upper end of its loss is at most
LOSS_BUDGET_PCT = +1 %):
  adaptive_threshold  the largest T within the budget against T = 0 (top-2)
  wlr_theta           the largest theta within the budget against theta = 0 (keeps all)
  minmax_floor        the lowest mean latency (the floor changes no routing)
  straggler_*         the lowest mean latency among the settings within the budget against
                      straggler_tradeoff = 0 (drops nothing)
Writes OUT/<sweep>/ (resumable: complete points are skipped) and OUT/report.md with each sweep's
table, the chosen values and whether configs/policies.json holds them. Exit status 0 when every
sweep ran, 1 otherwise, 2 on bad arguments.
"""

import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reproduce  # noqa: E402 (the sweep runner, result lookups and formatting)
from reproduce import (ReproduceError, SweepResults, axis_text, fmt,  # noqa: E402
                       interval, table, with_ci)

REPO = reproduce.REPO
# The perplexity a knob may cost on the calibration text: the upper end of the 95 % interval of
# its change against the neutral setting.
LOSS_BUDGET_PCT = 1.0

# sweep name -> (swept knob, its neutral value, rule)
TUNINGS = {
    "threshold": ("policy.adaptive_threshold", 0.0, "largest-without-loss"),
    "wlr-theta": ("policy.wlr_theta", 0.0, "largest-without-loss"),
    "minmax-floor": ("policy.minmax_floor", None, "lowest-latency"),
    "straggler": ("policy.straggler_tradeoff", 0.0, "lowest-latency-without-loss"),
}
# The knobs a tuning sweep varies besides its main one (all set in configs/policies.json).
STRAGGLER_KNOBS = ("policy.straggler_gain_min", "policy.straggler_tradeoff")


def settings(res, knobs):
    """Every combination of the knobs' values in the sweep, in file order."""
    combos = [{}]
    for knob in knobs:
        combos = [dict(c, **{knob: v}) for c in combos for v in res.values(knob)]
    return combos


def evaluate(res, knob, neutral):
    """[(setting, mean latency, its interval, perplexity change vs the neutral setting)]."""
    knobs = [k for k in (STRAGGLER_KNOBS if knob == "policy.straggler_tradeoff" else (knob,))
             if k in res.axes]
    rows = []
    for setting in settings(res, knobs):
        latency = res.metric(setting, "latency_mean_ms")
        ci = res.metric_interval(setting, "latency_mean_ms")
        change = None
        if neutral is not None:
            base = dict(setting, **{knob: neutral})
            change = res.compare(setting, base)["change"]["perplexity_change_pct"]
        rows.append((setting, latency, ci, change))
    return rows


def within_budget(change):
    ci = interval(change)[1]
    return ci is not None and ci[1] <= LOSS_BUDGET_PCT


def choose(rows, knob, rule):
    """The chosen row by the knob's rule (None when no setting qualifies)."""
    if rule == "lowest-latency":
        return min(rows, key=lambda r: r[1])
    qualified = [r for r in rows if within_budget(r[3])]
    if not qualified:
        return None
    if rule == "largest-without-loss":
        return max(qualified, key=lambda r: r[0][knob])
    return min(qualified, key=lambda r: r[1])


def current_values():
    with open(os.path.join(REPO, "configs", "policies.json"), encoding="utf-8") as f:
        return json.load(f).get("policy", {})


def section(name, res):
    knob, neutral, rule = TUNINGS[name]
    rows = evaluate(res, knob, neutral)
    chosen = choose(rows, knob, rule)
    lines = [f"## {name}: {knob} ({rule.replace('-', ' ').replace('loss', 'a loss beyond +' + str(LOSS_BUDGET_PCT) + ' %')})", "",
             f"Sweep `configs/tuning/{name}.json`, {res.replicates()} run(s) per point on the "
             "calibration text.", ""]
    body = []
    for setting, latency, ci, change in rows:
        mark = " (chosen)" if chosen is not None and setting == chosen[0] else ""
        body.append([", ".join(f"{k[len('policy.'):]} = {axis_text(v)}" for k, v in setting.items())
                     + mark, with_ci(latency, ci, 2),
                     "-" if change is None else with_ci(*interval(change), 2, sign=True) + " %"])
    lines.append(table(["setting", "mean latency (ms) [95 % CI]",
                        "perplexity vs the neutral setting [95 % CI]"], body))
    current = current_values()
    if chosen is None:
        lines += ["", "No setting qualifies: keep the neutral value."]
        return lines, {}
    picked = {k[len("policy."):]: v for k, v in chosen[0].items()}
    differs = {k: (current.get(k), v) for k, v in picked.items() if current.get(k) != v}
    lines += ["", "Chosen: " + ", ".join(f"`{k}` = {axis_text(v)}" for k, v in picked.items())
              + (" (configs/policies.json holds these)" if not differs else
                 " -- configs/policies.json differs: "
                 + ", ".join(f"`{k}` {axis_text(a) if a is not None else 'unset'} there"
                             for k, (a, _) in differs.items()))]
    return lines, differs


def main(argv):
    parser = argparse.ArgumentParser(prog="tune_policies.py",
                                     description="Chooses policy knobs on the calibration text.")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--bin", default=os.path.join(REPO, "build", "bin"))
    parser.add_argument("--out", default=os.path.join("results", "tuning"))
    parser.add_argument("--configs", default=os.path.join(REPO, "configs", "tuning"))
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    out_dir = os.path.abspath(args.out)
    bin_dir = os.path.abspath(args.bin)
    try:
        os.makedirs(out_dir, exist_ok=True)
        lines = ["# Policy knobs tuned on the calibration text", "",
                 "Made by `./wdmoe tune` (tools/tune_policies.py). No held-out text is scored "
                 "here; the results reported elsewhere use the values chosen below.", ""]
        problems, differs = [], {}
        for name in TUNINGS:
            path = os.path.join(args.configs, name + ".json")
            if not reproduce.run_sweep(bin_dir, path, out_dir, args.jobs):
                problems.append(f"sweep {name} failed")
                continue
            block, diff = section(name, SweepResults(os.path.join(out_dir, name), bin_dir))
            lines += block + [""]
            differs.update(diff)
        if problems:
            lines += ["**Incomplete:** " + "; ".join(problems), ""]
        reproduce.write_atomically(os.path.join(out_dir, "report.md"), "\n".join(lines))
        print(os.path.join(out_dir, "report.md"))
        for knob, (old, new) in differs.items():
            print(f"tune: {knob} = {axis_text(new)} (configs/policies.json: {old})")
        return 1 if problems else 0
    except (ReproduceError, OSError) as e:
        print(f"tune: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
