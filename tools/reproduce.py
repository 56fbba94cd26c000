#!/usr/bin/python3
"""The paper reproductions: runs every sweep of configs/paper/ with wdmoe-sweep, makes its figures
with plots/plot_results.py and writes a report of our numbers beside the papers' anchors.

Usage: reproduce.py [--jobs N] [--quick] [--bin DIR] [--out DIR] [--configs DIR]
       reproduce.py --sync-policies [--configs DIR]

  --jobs N      wdmoe-run processes at a time (default: the number of cores)
  --quick       the same sweeps with few scored tokens (the serving sweep: few requests) and
                few values per axis (the first, the reference value the report compares at,
                and the last; the first and last run): a test of the
                whole pipeline in seconds, not a result. Default --out: results/paper-quick
  --bin DIR     where wdmoe-sweep, wdmoe-run and wdmoe-compare are (default: build/bin of this repository;
                ./wdmoe reproduce builds them first)
  --out DIR     the results folder (default: results/paper under the current folder)
  --configs DIR the sweep files (default: configs/paper of this repository)
  --sync-policies  rewrites every policy object of the files in --configs (one-line objects
                with a "name") as configs/policies.json has that policy: its shared "policy"
                defaults merged with the entry of that name; runs nothing

Writes OUT/<sweep name>/ (wdmoe-sweep's points/ and sweep.csv, and figures/) for every sweep,
then OUT/report.md (atomically). Resumable: wdmoe-sweep skips the points already complete, so a
rerun after an interruption runs only the rest; the figures and the report are made again from
the result files each time. Every number of the report is computed from sweep.csv and the
points' summary.json; only the papers' own numbers (ANCHORS below, as src/wdmoe/doc/wdmoe.rst
lists them) are written here. Exit status: 0 when every sweep ran and every figure was made, 1
otherwise (the report then says what is missing), 2 on bad arguments.
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "plots"))
import wdmoe_results  # noqa: E402 (result files are read in one place, for figures and report)
from wdmoe_results import REPLICATE_AXES, tpot_knee  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLOT_SCRIPT = os.path.join(REPO, "plots", "plot_results.py")
# wdmoe-sweep writes results/<sweep name>/ under its working folder: it runs in OUT/.sweep-cwd,
# whose "results" is a link to OUT.
SWEEP_CWD = ".sweep-cwd"
QUICK_DIR = ".quick-sweeps"  # the derived sweep files of --quick, inside OUT
QUICK_SCORED_TOKENS = 8
QUICK_REQUESTS = 3  # --quick's requests per serving point
RATE_AXIS = "workload.requests.rate_per_s"
BASELINE_WDMOE = "top-2 + equal"
BASELINE_MEMORY = "top-2 + minmax"
# "Without accuracy loss" for our perplexity: at most this much above the unchanged model's.
NO_LOSS_PPL_PCT = 0.5

# The papers' reported numbers, as src/wdmoe/doc/wdmoe.rst ("Policies", the anchors table)
# lists them. Everything else in the report comes from the results.
ANCHORS = {
    "adapmoe-experts": "AdapMoE: about 25 % fewer activated experts without accuracy loss",
    "adapmoe-single": "AdapMoE (Mixtral-8x7B): 25.8 % of decisions use one expert at "
                      "T = 0.005, MMLU kept at 69.4 %",
    "adapmoe-prefetch": "AdapMoE: about 87 % next-layer prefetch accuracy",
    "adapmoe-speedup": "AdapMoE: 1.35x speedup (adaptive gating + prefetch + cache DP)",
    "wdmoe-joint": "WDMoE: large latency reductions from joint expert selection and bandwidth "
                   "allocation without accuracy loss",
}


class ReproduceError(Exception):
    pass


# --- results ------------------------------------------------------------------------------------

number = wdmoe_results.axis_value


def mean(values):
    values = list(values)
    return sum(values) / len(values) if values else math.nan


class SweepResults(wdmoe_results.Sweep):
    """A sweep's results as the figures read them (wdmoe_results.Sweep: sweep.csv, sweep-means.csv
    and each point's summary.json), with the report's lookups: values in file order, means over
    the replicate axes with their intervals, and paired comparisons of two sets of points
    (wdmoe-compare)."""

    def __init__(self, folder, bin_dir):
        try:
            super().__init__(folder)
        except (wdmoe_results.ResultError, KeyError, ValueError) as e:
            raise ReproduceError(f"{folder}: {e}") from e
        for row, point in zip(self.rows, self.points):
            row["summary"] = point.summary
            row["folder"] = point.folder
        self.bin_dir = bin_dir
        self.comparisons = {}

    def metric_interval(self, where, key):
        """(low, high) of a sweep-means.csv metric at the point `where` names (all non-replicate
        axes), or None when unknown (one run)."""
        rows = [r for r in self.rows if all(number(r[a]) == v for a, v in where.items())]
        return self.interval(rows[0], key) if rows else None

    def compare(self, where, baseline_where):
        """wdmoe-compare's JSON for the points matching `where` against those matching
        `baseline_where` (paired by run); None when either side has no points."""
        key = (tuple(sorted(where.items(), key=str)), tuple(sorted(baseline_where.items(), key=str)))
        if key not in self.comparisons:
            def folders(w):
                return [r["folder"] for r in self.rows
                        if all(number(r[a]) == v for a, v in w.items())]
            policy, base = folders(where), folders(baseline_where)
            self.comparisons[key] = None
            if policy and base:
                p = subprocess.run([os.path.join(self.bin_dir, "wdmoe-compare"),
                                    "--baseline=" + ",".join(base), "--policy=" + ",".join(policy),
                                    f"--stream={len(self.comparisons)}"],
                                   capture_output=True, text=True)
                if p.returncode != 0:
                    raise ReproduceError(f"{self.folder}: wdmoe-compare failed for {where} against "
                                         f"{baseline_where}: {p.stderr.strip()}")
                self.comparisons[key] = json.loads(p.stdout)
        return self.comparisons[key]

    def values(self, axis):
        seen = []
        for row in self.rows:
            v = number(row[axis])
            if v not in seen:
                seen.append(v)
        return seen

    def metric(self, where, key):
        """The mean over the matching rows (all replicates) of a sweep.csv column, or of a
        summary.json field when key starts with 'summary.'; NaN when none matches or the column
        is empty there."""
        values = []
        for row in self.rows:
            if all(number(row[a]) == v for a, v in where.items()):
                if key.startswith("summary."):
                    v = row["summary"].get(key[len("summary."):])
                else:
                    v = row[key]
                if v not in (None, ""):
                    values.append(float(v))
        return mean(values)

    def replicates(self):
        n = 1
        for axis in self.axes:
            if axis in REPLICATE_AXES:
                n *= len(self.values(axis))
        return n

    def first_summary(self):
        return self.rows[0]["summary"]


# --- formatting ---------------------------------------------------------------------------------

def fmt(value, digits):
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


def pct(value, base, digits=1):
    """The change of value against base in percent, signed."""
    if any(isinstance(v, float) and math.isnan(v) for v in (value, base)) or not base:
        return "-"
    return signed((value / base - 1) * 100, digits) + " %"


def signed(value, digits):
    """+1.5, -0.3; a value that rounds to zero is +0.0 (never -0.0)."""
    if round(value, digits) == 0:
        value = 0.0
    return f"{value:+.{digits}f}"


def change(value, base):
    return (value / base - 1) * 100


def with_ci(value, ci, digits, sign=False):
    """'12.34 [11.02, 13.66]' (or the value alone when the interval is unknown)."""
    f = (lambda v: signed(v, digits)) if sign else (lambda v: fmt(v, digits))
    if ci is None or ci[0] is None or ci[1] is None:
        return f(value)
    return f"{f(value)} [{f(ci[0])}, {f(ci[1])}]"


def interval(value):
    """(mean, (low, high)) of an interval object of wdmoe-compare's JSON."""
    low, high = value["ci"]
    return value["mean"], (low, high) if low is not None and high is not None else None


def accuracy_verdict(ppl_change):
    """The verdict on a perplexity change, decided by its 95 % interval (DESIGN.md section 8):
    'no measurable loss' only when the upper end is within NO_LOSS_PPL_PCT."""
    value, ci = interval(ppl_change)
    text = with_ci(value, ci, 2, sign=True) + " %"
    if ci is None:
        return f"{text} (no interval)"
    if ci[1] <= NO_LOSS_PPL_PCT:
        return f"{text}: no measurable loss (upper end within +{NO_LOSS_PPL_PCT} %)"
    if ci[0] > NO_LOSS_PPL_PCT:
        return f"{text}: a loss beyond +{NO_LOSS_PPL_PCT} %"
    return f"{text}: not resolved at +{NO_LOSS_PPL_PCT} % (the interval straddles it)"


def latency_verdict(latency_change):
    value, ci = interval(latency_change)
    text = with_ci(value, ci, 1, sign=True) + " %"
    if ci is None:
        return f"{text} (no interval)"
    return text + (": faster" if ci[1] < 0 else ": slower" if ci[0] > 0
                   else ": no significant difference")


def axis_text(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def span(values, digits=1, unit=" %"):
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    if signed(lo, digits) == signed(hi, digits):
        return signed(lo, digits) + unit
    return f"{signed(lo, digits)}{unit} to {signed(hi, digits)}{unit}"


# --- the reproductions --------------------------------------------------------------------------

def wdmoe_section(res, x_axis, x_label, reference):
    """Latency and perplexity of each policy along x_axis, against vanilla top-2 + equal,
    paired by run (latency) and by token (perplexity, KL)."""
    policies = res.values("policy")
    if BASELINE_WDMOE not in policies:
        raise ReproduceError(f"{res.folder}: no \"{BASELINE_WDMOE}\" policy to compare with")
    rows = []
    changes = {p: [] for p in policies}
    verdicts = {p: [] for p in policies}
    at_reference = {}
    for x in res.values(x_axis):
        base = {x_axis: x, "policy": BASELINE_WDMOE}
        for p in policies:
            where = {x_axis: x, "policy": p}
            latency = res.metric(where, "latency_mean_ms")
            cmp = res.compare(where, base)
            d = cmp["change"]
            rows.append([axis_text(x), p,
                         with_ci(latency, res.metric_interval(where, "latency_mean_ms"), 2),
                         fmt(res.metric(where, "latency_p95_ms"), 2),
                         "-" if p == BASELINE_WDMOE else latency_verdict(d["latency_change_pct"]),
                         fmt(res.metric(where, "experts_per_token_layer"), 3),
                         fmt(res.metric(where, "perplexity"), 4),
                         "-" if p == BASELINE_WDMOE
                         else with_ci(*interval(d["perplexity_change_pct"]), 2, sign=True) + " %",
                         fmt(res.metric(where, "kl_divergence"), 4)])
            if p != BASELINE_WDMOE:
                changes[p].append(d["latency_change_pct"]["mean"])
                verdicts[p].append((x, d["perplexity_change_pct"]))
                if x == reference:
                    at_reference[p] = d
    text = [table([x_label, "policy", "mean latency (ms) [95 % CI]", "p95 latency (ms)",
                   f"latency vs {BASELINE_WDMOE} [95 % CI]", "experts / token-layer",
                   "perplexity", f"perplexity vs {BASELINE_WDMOE} [95 % CI]", "KL (nats)"],
                  rows)]
    ours = []
    for p in policies:
        if p == BASELINE_WDMOE:
            continue
        ref = at_reference.get(p)
        ref_text = (f"; at {x_label} = {axis_text(reference)}: latency "
                    f"{latency_verdict(ref['latency_change_pct'])}, perplexity "
                    f"{accuracy_verdict(ref['perplexity_change_pct'])}" if ref else "")
        # "Without accuracy loss" is decided by each point's interval.
        unresolved = [f"{axis_text(x)} ({with_ci(*interval(v), 2, sign=True)} %)"
                      for x, v in verdicts[p] if (interval(v)[1] or (math.inf, math.inf))[1]
                      > NO_LOSS_PPL_PCT]
        loss_text = ("; no measurable accuracy loss at any point" if not unresolved else
                     f"; not 'without accuracy loss' where the interval's upper end exceeds "
                     f"+{NO_LOSS_PPL_PCT} %: {x_label} {', '.join(unresolved)}")
        ours.append(f"{p}: mean latency change {span(changes[p])} over {x_label} "
                    f"{axis_text(res.values(x_axis)[0])}-{axis_text(res.values(x_axis)[-1])}"
                    f"{ref_text}{loss_text}")
    text.append(table(["paper", f"ours (against {BASELINE_WDMOE}, {res.replicates()} run(s) per "
                                f"point, paired)"],
                      [[ANCHORS["wdmoe-joint"], "<br>".join(ours)]]))
    return text


def threshold_section(res, reference):
    axis = "policy.adaptive_threshold"
    thresholds = res.values(axis)
    if 0.0 not in thresholds:
        raise ReproduceError(f"{res.folder}: no T = 0 point (top-2) to compare with")
    rows = []
    policies = res.values("policy")
    points = {}
    for p in policies:
        base = {axis: 0.0, "policy": p}
        base_experts = res.metric(base, "experts_per_token_layer")
        for t in thresholds:
            where = {axis: t, "policy": p}
            experts = res.metric(where, "experts_per_token_layer")
            single = res.metric(where, "summary.single_expert_rate")
            d = res.compare(where, base)["change"]
            points[(p, t)] = (change(experts, base_experts), single, d)
            rows.append([axis_text(t), p, fmt(experts, 3), pct(experts, base_experts),
                         fmt(single * 100, 1) + " %", fmt(res.metric(where, "perplexity"), 4),
                         with_ci(*interval(d["perplexity_change_pct"]), 2, sign=True) + " %",
                         fmt(res.metric(where, "kl_divergence"), 4),
                         with_ci(res.metric(where, "latency_mean_ms"),
                                 res.metric_interval(where, "latency_mean_ms"), 2)])
    text = [table(["T", "policy", "experts / token-layer", "experts vs T = 0",
                   "single-expert decisions", "perplexity", "perplexity vs T = 0 [95 % CI]",
                   "KL (nats)", "mean latency (ms) [95 % CI]"],
                  rows)]
    anchors = []
    for p in policies:
        # Perplexity is not monotone in T: the largest saving among the thresholds whose
        # interval's upper end is within the bound.
        def upper(t):
            ci = interval(points[(p, t)][2]["perplexity_change_pct"])[1]
            return ci[1] if ci else math.inf
        within = [t for t in thresholds if upper(t) <= NO_LOSS_PPL_PCT]
        best = max(within, key=lambda t: -points[(p, t)][0]) if within else None
        ref = points.get((p, reference))
        parts = []
        if ref:
            parts.append(f"{-ref[0]:.1f} % fewer experts at T = {axis_text(reference)}, "
                         f"perplexity {accuracy_verdict(ref[2]['perplexity_change_pct'])}")
        if best is not None and best != reference:
            parts.append(f"the most with no measurable loss: {-points[(p, best)][0]:.1f} % "
                         f"fewer at T = {axis_text(best)} (perplexity "
                         f"{with_ci(*interval(points[(p, best)][2]['perplexity_change_pct']), 2, sign=True)} %)")
        experts_text = "; ".join(parts) or "-"
        single_text = (f"{ref[1] * 100:.1f} % of decisions use one expert at T = "
                       f"{axis_text(reference)}" if ref else f"no T = {axis_text(reference)} point")
        label = f"{p}: " if len(policies) > 1 else ""
        anchors += [[ANCHORS["adapmoe-experts"], label + experts_text],
                    [ANCHORS["adapmoe-single"], label + single_text]]
    text.append(table(["paper", f"ours (perplexity instead of MMLU; {res.replicates()} run(s) "
                                f"per point, paired by token)"], anchors))
    return text


def memory_section(res, reference):
    axis = "devices.memory_fraction"
    policies = res.values("policy")
    if BASELINE_MEMORY not in policies:
        raise ReproduceError(f"{res.folder}: no \"{BASELINE_MEMORY}\" policy to compare with")
    rows = []
    speedups = {p: {} for p in policies}
    prefetch = {p: [] for p in policies}
    for x in res.values(axis):
        base = {axis: x, "policy": BASELINE_MEMORY}
        slots = sorted({row["summary"]["cell"]["expert_memory_slots_per_device"]
                        for row in res.rows if number(row[axis]) == x})
        for p in policies:
            where = {axis: x, "policy": p}
            latency = res.metric(where, "latency_mean_ms")
            accuracy = res.metric(where, "prefetch_accuracy")
            # Speedup = 1 / (1 + paired latency change): its interval maps from the change's.
            value, ci = interval(res.compare(where, base)["change"]["latency_change_pct"])
            speedup = 1 / (1 + value / 100)
            speedup_ci = (1 / (1 + ci[1] / 100), 1 / (1 + ci[0] / 100)) if ci else None
            speedups[p][x] = (speedup, speedup_ci)
            if not math.isnan(accuracy):
                prefetch[p].append(accuracy)
            rows.append([axis_text(x), "/".join(str(s) for s in slots), p,
                         with_ci(latency, res.metric_interval(where, "latency_mean_ms"), 2),
                         fmt(res.metric(where, "cache_hit_rate"), 3),
                         fmt(accuracy * 100, 1) + (" %" if not math.isnan(accuracy) else ""),
                         with_ci(speedup, speedup_ci, 2) + "x"])
    text = [table(["memory fraction", "expert slots / device", "policy",
                   "mean latency (ms) [95 % CI]", "cache hit rate", "prefetch accuracy",
                   f"speedup over {BASELINE_MEMORY} [95 % CI]"],
                  rows)]
    prefetch_text = "<br>".join(
        f"{p}: {span([v * 100 for v in prefetch[p]], 1).replace('+', '')}"
        for p in policies if prefetch[p])
    speedup_text = []
    for p in policies:
        if p == BASELINE_MEMORY:
            continue
        values = [v for v, _ in speedups[p].values()]
        at = speedups[p].get(reference)
        speedup_text.append(f"{p}: {min(values):.2f}x to {max(values):.2f}x over memory "
                            f"fractions {axis_text(res.values(axis)[0])}-"
                            f"{axis_text(res.values(axis)[-1])}"
                            + (f" ({with_ci(at[0], at[1], 2)}x at {axis_text(reference)})"
                               if at else ""))
    text.append(table(["paper", f"ours ({res.replicates()} run(s) per point, paired by run)"],
                      [[ANCHORS["adapmoe-prefetch"], prefetch_text or "-"],
                       [ANCHORS["adapmoe-speedup"], "<br>".join(speedup_text)]]))
    return text


def serving_section(res):
    """Per load and policy: TTFT and TPOT percentiles, throughput and energy per output token;
    then per policy the knee (TPOT p99 twice its value at the lightest load) and the energy per
    output token at the lightest and the heaviest load."""
    rates = res.values(RATE_AXIS)
    policies = res.values("policy")

    def energy(where):
        return mean(r["summary"]["energy"]["per_output_token_j"] for r in res.rows
                    if all(number(r[a]) == v for a, v in where.items())
                    and "energy" in r["summary"])

    rows = []
    for rate in rates:
        for p in policies:
            where = {RATE_AXIS: rate, "policy": p}
            rows.append([axis_text(rate), p]
                        + [fmt(res.metric(where, f"{m}_ms") / 1e3, 2)
                           for m in ("ttft_p50", "ttft_p99", "tpot_p50", "tpot_p99")]
                        + [fmt(res.metric(where, "throughput_requests_per_s"), 4),
                           fmt(energy(where), 1)])
    text = [table(["load (requests/s)", "policy", "TTFT p50 (s)", "TTFT p99 (s)",
                   "TPOT p50 (s)", "TPOT p99 (s)", "throughput (requests/s)",
                   "energy per output token (J)"], rows)]
    knees = []
    for p in policies:
        p99 = [res.metric({RATE_AXIS: r, "policy": p}, "tpot_p99_ms") for r in rates]
        knee = tpot_knee(rates, p99)
        knees.append([p, fmt(p99[0] / 1e3, 2),
                      axis_text(knee) if knee is not None else f"beyond {axis_text(rates[-1])}",
                      fmt(energy({RATE_AXIS: rates[0], "policy": p}), 1),
                      fmt(energy({RATE_AXIS: rates[-1], "policy": p}), 1)])
    text.append(f"The knee: the offered load at which TPOT p99 first reaches twice its value at "
                f"the lightest load ({axis_text(rates[0])} requests/s); energy: the devices' "
                f"joules per output token (`summary.json` energy.per_output_token_j, compute and "
                f"radio, idle power included), at the lightest and the heaviest load.")
    text.append(table(["policy", f"TPOT p99 at {axis_text(rates[0])}/s (s)",
                       "knee (requests/s)", f"energy per output token at {axis_text(rates[0])}/s "
                       "(J)", f"energy per output token at {axis_text(rates[-1])}/s (J)"], knees))
    return text


# name, paper, title, figures, reference point {axis: value} (kept by --quick; the anchors
# compare there), section function; quick_axes: --quick's extra axes (default: few scored
# tokens)
REPRODUCTIONS = [
    {"sweep": "wdmoe-devices", "title": "WDMoE: latency vs number of devices",
     "figures": ["latency-vs-devices.png"], "reference": {"devices.count": 8},
     "section": lambda r: wdmoe_section(r, "devices.count", "devices", 8)},
    {"sweep": "wdmoe-bandwidth", "title": "WDMoE: latency vs total bandwidth",
     "figures": ["latency-vs-bandwidth.png"], "reference": {"cell.bandwidth_mhz": 100},
     "section": lambda r: wdmoe_section(r, "cell.bandwidth_mhz", "bandwidth (MHz)", 100)},
    {"sweep": "adapmoe-threshold",
     "title": "AdapMoE: activated experts and perplexity vs the gating threshold T",
     "figures": ["experts-perplexity-vs-threshold.png"],
     "reference": {"policy.adaptive_threshold": 0.0002},
     "section": lambda r: threshold_section(r, 0.0002)},
    {"sweep": "adapmoe-memory",
     "title": "AdapMoE: latency vs cache size, with and without prefetch",
     "figures": ["cache-vs-memory.png"], "reference": {"devices.memory_fraction": 0.5},
     "section": lambda r: memory_section(r, 0.5)},
    {"sweep": "serving-load", "title": "Serving many users: latency and energy vs offered load",
     "figures": ["serving-vs-load.png"], "reference": {RATE_AXIS: 0.0125},
     "quick_axes": {"workload.requests.count": [QUICK_REQUESTS]},
     "section": serving_section},
]


def differences(results):
    """The 'where our setup differs' section, with our side read from a point's summary."""
    any_results = next((r for r in results.values() if r is not None), None)
    if any_results is None:
        return ["No sweep has results yet."]
    s = any_results.first_summary()
    routed, priced = s["model_routed"], s["model_priced"]
    model = os.path.basename(os.path.normpath(routed["dir"]))
    tokens = sorted({(r.first_summary()["tokens_scored"], r.first_summary()["decode_tokens"])
                     for r in results.values() if r is not None})
    token_text = " or ".join(f"{t} tokens ({d} decode steps)" for t, d in tokens)
    cells = {}
    for name, r in results.items():
        if r is not None:
            c = r.first_summary()["cell"]
            key = f"{c['device_profile']} devices around an {c['bs_profile']} BS"
            cells.setdefault(key, []).append(f"`{name}`")
    cells = [f"{key} ({', '.join(names)})" for key, names in cells.items()]
    items = [
        f"**Model.** Routing and accuracy come from our embedded model `{model}`: "
        f"{routed['layers']} MoE layers x {routed['experts']} experts, top-{routed['top_k']}, "
        f"d_model {routed['d_model']}, a byte-level model trained on the King James Bible, "
        f"scoring {token_text} of its held-out text after the prompt. The papers' numbers are "
        f"for Mixtral-8x7B ({priced['layers']} layers).",
        f"**Costs.** Transfers, loads and compute are priced as {priced['name']} "
        f"(d_model {priced['d_model']}, {priced['expert_bytes'] / 1e6:.0f} MB per expert), one "
        f"priced layer per routed layer: {s.get('latency_covers', 'latency covers ' + str(routed['layers']) + ' of ' + str(priced['layers']) + ' layers')}.",
        "**Accuracy.** Perplexity of the scored text (teacher forcing, byte-level) instead of "
        "MMLU or the papers' task accuracies. Every change in perplexity comes with a 95 % "
        "percentile-bootstrap interval over the scored tokens (paired: the same tokens under "
        "both policies; each run scores its own stretch of the held-out text); \"no "
        f"measurable loss\" means the interval's upper end is at most +{NO_LOSS_PPL_PCT} %. "
        "Latency changes are paired by run, with a Student-t interval across runs.",
        "**Cell.** A simulated 3GPP UMa cell at 3.5 GHz (ns-3's ThreeGppUmaPropagationLossModel "
        "with log-normal shadowing, Rayleigh block fading; device positions and channels drawn "
        "by the ns-3 run number) instead of the papers' "
        "testbeds (WDMoE: a testbed of Jetson boards; AdapMoE: a single device whose experts "
        "do not all fit in GPU memory and are loaded on demand, where our 'load' is a mobile "
        "device's storage read). Cells: "
        + "; ".join(cells) + ".",
        "**Baselines.** WDMoE's anchor is against vanilla top-2 with equal bandwidth; AdapMoE's "
        f"speedup is against its own offloading baseline, ours against {BASELINE_MEMORY} "
        "(uniform LRU expert caches, no prefetch) in the same cell.",
        "**Sensitivities.** AdapMoE's per-layer sensitivities F_l are calibrated on our model's "
        "calibration text (`./wdmoe calibrate`), not on Mixtral's, so a threshold T selects "
        "different shares of single-expert decisions than the same T in the paper.",
    ]
    return ["- " + item for item in items]


# --- running ------------------------------------------------------------------------------------

def comparison_policies(path=os.path.join(REPO, "configs", "policies.json")):
    """{name: policy object} of the policy comparison: its shared "policy" defaults merged with
    each entry (name first, then the entry's fields, then the defaults it does not set)."""
    with open(path, encoding="utf-8") as f:
        comparison = json.load(f)
    shared = comparison.get("policy", {})
    return {e["name"]: dict(e, **{k: v for k, v in shared.items() if k not in e})
            for e in comparison["policies"]}


def sync_policies(config_dir):
    """Rewrites the one-line policy objects of config_dir's files from configs/policies.json;
    returns the files changed. A name the comparison lacks is an error."""
    policies = comparison_policies()
    pattern = re.compile(r'^(\s*(?:"policy":\s*)?)(\{"name":.*\})(,?)\s*$')
    changed = []
    for name in sorted(os.listdir(config_dir)):
        path = os.path.join(config_dir, name)
        if not name.endswith(".json") or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        out = []
        for line in lines:
            m = pattern.match(line)
            if m:
                value = json.loads(m.group(2))
                if value["name"] not in policies:
                    raise ReproduceError(f"{path}: policy \"{value['name']}\" is not in "
                                         "configs/policies.json")
                line = m.group(1) + json.dumps(policies[value["name"]]) + m.group(3)
            out.append(line)
        if out != lines:
            write_atomically(path, "\n".join(out))
            changed.append(path)
    return changed


def find_sweeps(config_dir):
    """{name: path} of the sweep files (JSON with a "base") in config_dir; scenario files beside
    them are bases, not reproductions."""
    sweeps = {}
    for name in sorted(os.listdir(config_dir)):
        path = os.path.join(config_dir, name)
        if not name.endswith(".json") or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except ValueError as e:
                raise ReproduceError(f"{path}: not JSON: {e}") from e
        if isinstance(data, dict) and "base" in data:
            sweeps[name[:-len(".json")]] = path
    known = {r["sweep"] for r in REPRODUCTIONS}
    unknown = sorted(set(sweeps) - known)
    missing = sorted(known - set(sweeps))
    if unknown or missing:
        raise ReproduceError(
            f"{config_dir}: the sweep files and tools/reproduce.py's reproductions differ "
            f"(no reproduction for: {', '.join(unknown) or 'none'}; no sweep file for: "
            f"{', '.join(missing) or 'none'})")
    return sweeps


def quick_sweep(path, reproduction, out_dir):
    """A derived sweep file for --quick: base made absolute, each value list cut to its first,
    reference and last value (all policies; the first and last run), plus a one-value
    workload.scored_tokens axis (or the reproduction's quick_axes). Returns its path (same file
    name, so the same result folder name)."""
    with open(path, encoding="utf-8") as f:
        sweep = json.load(f)
    sweep["base"] = os.path.abspath(os.path.join(os.path.dirname(path), sweep["base"]))
    sweep["description"] = f"--quick version of {path} (written by tools/reproduce.py)"
    if "axes" in sweep:
        axes = {}
        for axis, values in sweep["axes"].items():
            if axis == "policy":
                axes[axis] = values
            elif axis in REPLICATE_AXES:
                axes[axis] = values[:1] + values[-1:] if len(values) > 1 else values
            else:
                keep = [values[0], reproduction["reference"].get(axis), values[-1]]
                axes[axis] = [v for i, v in enumerate(values) if v in keep and v not in values[:i]]
        axes.update(reproduction.get("quick_axes",
                                     {"workload.scored_tokens": [QUICK_SCORED_TOKENS]}))
        sweep["axes"] = axes
    else:
        sweep["points"] = [dict(p, **{"workload.scored_tokens": QUICK_SCORED_TOKENS})
                           for p in sweep["points"][:3]]
    os.makedirs(os.path.join(out_dir, QUICK_DIR), exist_ok=True)
    derived = os.path.join(out_dir, QUICK_DIR, os.path.basename(path))
    write_atomically(derived, json.dumps(sweep, indent=2) + "\n")
    return derived


def write_atomically(path, text):
    folder = os.path.dirname(path) or "."
    fd, temp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        # mkstemp makes the file 0600; a result or config file gets the usual mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def sweep_cwd(out_dir):
    """OUT/.sweep-cwd, whose results/ is OUT: wdmoe-sweep run there writes OUT/<sweep name>/."""
    cwd = os.path.join(out_dir, SWEEP_CWD)
    os.makedirs(cwd, exist_ok=True)
    link = os.path.join(cwd, "results")
    if os.path.islink(link) and os.readlink(link) == "..":
        return cwd
    if os.path.lexists(link):
        raise ReproduceError(f"{link}: in the way (expected a link to ..); remove it")
    os.symlink("..", link)
    return cwd


def run_sweep(bin_dir, path, out_dir, jobs):
    print(f"reproduce: sweep {path}", file=sys.stderr, flush=True)
    p = subprocess.run([os.path.join(bin_dir, "wdmoe-sweep"), os.path.abspath(path),
                        "--jobs", str(jobs)], cwd=sweep_cwd(out_dir))
    return p.returncode == 0


def make_figures(folder, expected):
    """plots/plot_results.py on a sweep folder; the list of missing expected figures."""
    p = subprocess.run([sys.executable, PLOT_SCRIPT, folder], capture_output=True, text=True)
    figures = os.path.join(folder, "figures")
    missing = [n for n in expected if not os.path.isfile(os.path.join(figures, n))]
    if p.returncode != 0 or missing:
        sys.stderr.write(p.stderr)
        if not missing:
            missing = [f"(plot_results.py exited {p.returncode})"]
    return missing


def report(out_dir, sweeps, results, problems, quick):
    lines = ["# Paper reproductions", ""]
    lines.append("Made by `./wdmoe reproduce" + (" --quick" if quick else "") + "` "
                 "(tools/reproduce.py) from the sweeps of `configs/paper/`; every number of "
                 "ours below is computed from the sweeps' `sweep.csv` and the points' "
                 "`summary.json` in this folder (means over the `run` axis where it has one); "
                 "the papers' numbers are as `src/wdmoe/doc/wdmoe.rst` lists them. Intervals "
                 "are 95 %: latency across runs (Student t; changes paired by run), accuracy "
                 "over tokens (paired percentile bootstrap, `wdmoe-compare`).")
    if quick:
        lines += ["", f"**Quick mode:** {QUICK_SCORED_TOKENS} scored tokens and few values per "
                      "axis; a test of the pipeline, not a result."]
    if problems:
        lines += ["", "**Incomplete:** " + "; ".join(problems) + ". Rerun to complete (complete "
                                                                   "points are skipped)."]
    lines += ["", table(["reproduction", "sweep file", "points", "figures"],
                        [[r["title"], f"`configs/paper/{r['sweep']}.json`",
                          len(results[r["sweep"]].rows) if results[r["sweep"]] else "-",
                          ", ".join(f"[{f}]({r['sweep']}/figures/{f})" for f in r["figures"])]
                         for r in REPRODUCTIONS])]
    for r in REPRODUCTIONS:
        lines += ["", f"## {r['title']}", ""]
        res = results[r["sweep"]]
        if res is None:
            lines.append(f"No results: the sweep `{sweeps[r['sweep']]}` did not complete.")
            continue
        axes = ", ".join(f"`{a}` ({len(res.values(a))} value"
                         f"{'' if len(res.values(a)) == 1 else 's'})" for a in res.axes)
        lines += [f"Sweep `configs/paper/{r['sweep']}.json`: {len(res.rows)} points over "
                  f"{axes}; results in `{r['sweep']}/`.", ""]
        for f in r["figures"]:
            path = os.path.join(out_dir, r["sweep"], "figures", f)
            lines.append(f"![{f}]({r['sweep']}/figures/{f})" if os.path.isfile(path)
                         else f"(figure {f} missing)")
        for block in r["section"](res):
            lines += ["", block]
    lines += ["", "## Where our setup differs", ""] + differences(results)
    write_atomically(os.path.join(out_dir, "report.md"), "\n".join(lines) + "\n")


def main(argv):
    parser = argparse.ArgumentParser(
        prog="reproduce.py",
        description="Runs the paper reproductions (configs/paper/), their figures and "
                    "report.md.")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="wdmoe-run processes at a time (default: the cores)")
    parser.add_argument("--quick", action="store_true",
                        help="few scored tokens and values: tests the pipeline in seconds")
    parser.add_argument("--bin", default=os.path.join(REPO, "build", "bin"),
                        help="folder of wdmoe-sweep, wdmoe-run and wdmoe-compare (default: build/bin)")
    parser.add_argument("--out", help="results folder (default: results/paper, or "
                                      "results/paper-quick with --quick)")
    parser.add_argument("--configs", default=os.path.join(REPO, "configs", "paper"),
                        help="folder of the sweep files (default: configs/paper)")
    parser.add_argument("--sync-policies", action="store_true",
                        help="rewrite the policy objects of the --configs files from "
                             "configs/policies.json, then exit")
    args = parser.parse_args(argv)
    if args.sync_policies:
        try:
            for path in sync_policies(args.configs):
                print(path)
        except (ReproduceError, OSError, ValueError) as e:
            print(f"reproduce: {e}", file=sys.stderr)
            return 1
        return 0
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    out_dir = os.path.abspath(args.out or os.path.join(
        "results", "paper-quick" if args.quick else "paper"))
    try:
        for program in ("wdmoe-sweep", "wdmoe-run", "wdmoe-compare"):
            if not os.access(os.path.join(args.bin, program), os.X_OK):
                raise ReproduceError(f"{os.path.join(args.bin, program)}: not found (build it: "
                                     "./wdmoe reproduce builds both; or give --bin DIR)")
        sweeps = find_sweeps(args.configs)
        os.makedirs(out_dir, exist_ok=True)
        results, problems = {}, []
        for r in REPRODUCTIONS:
            name = r["sweep"]
            path = quick_sweep(sweeps[name], r, out_dir) if args.quick else sweeps[name]
            results[name] = None
            if not run_sweep(args.bin, path, out_dir, args.jobs):
                problems.append(f"sweep {name} failed")
                continue
            folder = os.path.join(out_dir, name)
            missing = make_figures(folder, r["figures"])
            if missing:
                problems.append(f"{name}: figures not made: {', '.join(missing)}")
            results[name] = SweepResults(folder, args.bin)
            for f in r["figures"]:
                if f not in missing:
                    print(os.path.join(folder, "figures", f))
        report(out_dir, sweeps, results, problems, args.quick)
        print(os.path.join(out_dir, "report.md"))
        if problems:
            print("reproduce: " + "; ".join(problems), file=sys.stderr)
            return 1
        return 0
    except ReproduceError as e:
        print(f"reproduce: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # an unwritable --out, a full disk
        print(f"reproduce: {e.filename or out_dir}: {e.strerror or e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
