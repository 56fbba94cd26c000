#!/usr/bin/python3
"""The paper reproductions: runs every sweep of configs/paper/ with wdmoe-sweep, makes its figures
with plots/plot_results.py and writes a report of our numbers beside the papers' anchors.

Usage: reproduce.py [--jobs N] [--quick] [--bin DIR] [--out DIR] [--configs DIR]
       reproduce.py --sync-policies [--configs DIR]

  --jobs N      wdmoe-run processes at a time (default: the number of cores)
  --quick       the same sweeps with few scored tokens and few values per axis (the first, the
                reference value the report compares at, and the last; the first and
                last run): a test of the
                whole pipeline in seconds, not a result. Default --out: results/paper-quick
  --bin DIR     where wdmoe-sweep and wdmoe-run are (default: build/bin of this repository;
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
from wdmoe_results import REPLICATE_AXES  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLOT_SCRIPT = os.path.join(REPO, "plots", "plot_results.py")
# wdmoe-sweep writes results/<sweep name>/ under its working folder: it runs in OUT/.sweep-cwd,
# whose "results" is a link to OUT.
SWEEP_CWD = ".sweep-cwd"
QUICK_DIR = ".quick-sweeps"  # the derived sweep files of --quick, inside OUT
QUICK_SCORED_TOKENS = 8
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
    """A sweep's results as the figures read them (wdmoe_results.Sweep: sweep.csv and each
    point's summary.json), with the report's lookups: values in file order, means over the
    replicate axes."""

    def __init__(self, folder):
        try:
            super().__init__(folder)
        except (wdmoe_results.ResultError, KeyError, ValueError) as e:
            raise ReproduceError(f"{folder}: {e}") from e
        for row, point in zip(self.rows, self.points):
            row["summary"] = point.summary

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
    """Latency and perplexity of each policy along x_axis, against vanilla top-2 + equal."""
    policies = res.values("policy")
    if BASELINE_WDMOE not in policies:
        raise ReproduceError(f"{res.folder}: no \"{BASELINE_WDMOE}\" policy to compare with")
    rows = []
    changes = {p: [] for p in policies}
    ppl_changes = {p: [] for p in policies}
    at_reference = {}
    for x in res.values(x_axis):
        base_latency = res.metric({x_axis: x, "policy": BASELINE_WDMOE}, "latency_mean_ms")
        base_ppl = res.metric({x_axis: x, "policy": BASELINE_WDMOE}, "perplexity")
        for p in policies:
            where = {x_axis: x, "policy": p}
            latency = res.metric(where, "latency_mean_ms")
            ppl = res.metric(where, "perplexity")
            rows.append([axis_text(x), p, fmt(latency, 2),
                         fmt(res.metric(where, "latency_p95_ms"), 2), pct(latency, base_latency),
                         fmt(res.metric(where, "experts_per_token_layer"), 3), fmt(ppl, 4),
                         pct(ppl, base_ppl, 2)])
            if p != BASELINE_WDMOE:
                changes[p].append(change(latency, base_latency))
                ppl_changes[p].append(change(ppl, base_ppl))
                if x == reference:
                    at_reference[p] = (change(latency, base_latency), change(ppl, base_ppl))
    text = [table([x_label, "policy", "mean latency (ms)", "p95 latency (ms)",
                   f"latency vs {BASELINE_WDMOE}", "experts / token-layer", "perplexity",
                   f"perplexity vs {BASELINE_WDMOE}"], rows)]
    ours = []
    for p in policies:
        if p == BASELINE_WDMOE:
            continue
        ref = at_reference.get(p)
        ref_text = (f" ({signed(ref[0], 1)} % latency, {signed(ref[1], 2)} % perplexity at "
                    f"{x_label} = {axis_text(reference)})" if ref else "")
        # The anchor says "without accuracy loss": say where ours is above that reading.
        worst = max((c for c in ppl_changes[p] if not math.isnan(c)), default=math.nan)
        loss_text = (f"; perplexity more than {NO_LOSS_PPL_PCT} % above {BASELINE_WDMOE}'s at "
                     f"some points (up to {signed(worst, 2)} %), so not 'without accuracy loss' "
                     "there" if worst > NO_LOSS_PPL_PCT else "")
        ours.append(f"{p}: latency {span(changes[p])}, perplexity "
                    f"{span(ppl_changes[p], 2)} over {x_label} "
                    f"{axis_text(res.values(x_axis)[0])}-{axis_text(res.values(x_axis)[-1])}"
                    f"{ref_text}{loss_text}")
    text.append(table(["paper", f"ours (against {BASELINE_WDMOE}, mean over "
                                f"{res.replicates()} run(s))"],
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
        base_ppl = res.metric(base, "perplexity")
        for t in thresholds:
            where = {axis: t, "policy": p}
            experts = res.metric(where, "experts_per_token_layer")
            single = res.metric(where, "summary.single_expert_rate")
            ppl = res.metric(where, "perplexity")
            points[(p, t)] = (change(experts, base_experts), single, change(ppl, base_ppl), ppl)
            rows.append([axis_text(t), p, fmt(experts, 3), pct(experts, base_experts),
                         fmt(single * 100, 1) + " %", fmt(ppl, 4), pct(ppl, base_ppl, 2),
                         fmt(res.metric(where, "latency_mean_ms"), 2)])
    text = [table(["T", "policy", "experts / token-layer", "experts vs T = 0",
                   "single-expert decisions", "perplexity", "perplexity vs T = 0",
                   "mean latency (ms)"],
                  rows)]
    anchors = []
    for p in policies:
        # Perplexity is not monotone in T: the largest saving among the thresholds within the
        # bound, and the first threshold beyond twice the bound.
        within = [t for t in thresholds if points[(p, t)][2] <= NO_LOSS_PPL_PCT]
        best = max(within, key=lambda t: -points[(p, t)][0]) if within else None
        beyond = [t for t in sorted(thresholds) if points[(p, t)][2] > 2 * NO_LOSS_PPL_PCT]
        ref = points.get((p, reference))
        parts = []
        if ref:
            parts.append(f"{-ref[0]:.1f} % fewer experts at T = {axis_text(reference)} "
                         f"({signed(ref[2], 2)} % perplexity)")
        if best is not None and best != reference:
            parts.append(f"the most within {NO_LOSS_PPL_PCT} % of T = 0's perplexity: "
                         f"{-points[(p, best)][0]:.1f} % fewer at T = {axis_text(best)} "
                         f"({signed(points[(p, best)][2], 2)} %)")
        if beyond:
            t = beyond[0]
            parts.append(f"perplexity first above +{2 * NO_LOSS_PPL_PCT:g} % at T = "
                         f"{axis_text(t)} ({signed(points[(p, t)][2], 2)} %, "
                         f"{-points[(p, t)][0]:.1f} % fewer)")
        experts_text = "; ".join(parts) or "-"
        single_text = (f"{ref[1] * 100:.1f} % of decisions use one expert at T = "
                       f"{axis_text(reference)}, perplexity {ref[3]:.4f} ({signed(ref[2], 2)} % vs "
                       f"T = 0)" if ref else f"no T = {axis_text(reference)} point")
        label = f"{p}: " if len(policies) > 1 else ""
        anchors += [[ANCHORS["adapmoe-experts"], label + experts_text],
                    [ANCHORS["adapmoe-single"], label + single_text]]
    text.append(table(["paper", "ours (perplexity instead of MMLU)"], anchors))
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
        base_latency = res.metric({axis: x, "policy": BASELINE_MEMORY}, "latency_mean_ms")
        slots = sorted({row["summary"]["cell"]["expert_memory_slots_per_device"]
                        for row in res.rows if number(row[axis]) == x})
        for p in policies:
            where = {axis: x, "policy": p}
            latency = res.metric(where, "latency_mean_ms")
            accuracy = res.metric(where, "prefetch_accuracy")
            speedups[p][x] = base_latency / latency
            if not math.isnan(accuracy):
                prefetch[p].append(accuracy)
            rows.append([axis_text(x), "/".join(str(s) for s in slots), p, fmt(latency, 2),
                         fmt(res.metric(where, "cache_hit_rate"), 3),
                         fmt(accuracy * 100, 1) + (" %" if not math.isnan(accuracy) else ""),
                         f"{fmt(base_latency / latency, 2)}x"])
    text = [table(["memory fraction", "expert slots / device", "policy", "mean latency (ms)",
                   "cache hit rate", "prefetch accuracy", f"speedup over {BASELINE_MEMORY}"],
                  rows)]
    prefetch_text = "<br>".join(
        f"{p}: {span([v * 100 for v in prefetch[p]], 1).replace('+', '')}"
        for p in policies if prefetch[p])
    speedup_text = []
    for p in policies:
        if p == BASELINE_MEMORY:
            continue
        values = list(speedups[p].values())
        at = speedups[p].get(reference)
        speedup_text.append(f"{p}: {min(values):.2f}x to {max(values):.2f}x over memory "
                            f"fractions {axis_text(res.values(axis)[0])}-"
                            f"{axis_text(res.values(axis)[-1])}"
                            + (f" ({at:.2f}x at {axis_text(reference)})" if at else ""))
    text.append(table(["paper", f"ours (mean over {res.replicates()} run(s))"],
                      [[ANCHORS["adapmoe-prefetch"], prefetch_text or "-"],
                       [ANCHORS["adapmoe-speedup"], "<br>".join(speedup_text)]]))
    return text


# name, paper, title, figures, reference point {axis: value} (kept by --quick; the anchors
# compare there), section function
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
     "reference": {"policy.adaptive_threshold": 0.005},
     "section": lambda r: threshold_section(r, 0.005)},
    {"sweep": "adapmoe-memory",
     "title": "AdapMoE: latency vs cache size, with and without prefetch",
     "figures": ["cache-vs-memory.png"], "reference": {"devices.memory_fraction": 0.2},
     "section": lambda r: memory_section(r, 0.2)},
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
        f"(d_model {priced['d_model']}, {priced['expert_bytes'] / 1e6:.0f} MB per expert), but "
        f"per routed layer: each of our {routed['layers']} layers is priced as one "
        f"{priced['name']} layer, so a token's latency covers {routed['layers']} layers, not "
        f"{priced['layers']}. Absolute latencies are therefore roughly {routed['layers']}/"
        f"{priced['layers']} of a full model's; ratios and percentages compare better.",
        "**Accuracy.** Perplexity of the scored text (teacher forcing, byte-level) instead of "
        "MMLU or the papers' task accuracies; \"without accuracy loss\" reads here as a "
        f"perplexity at most {NO_LOSS_PPL_PCT} % above the unchanged model's.",
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
    workload.scored_tokens axis. Returns its path (same file name, so the same result folder name)."""
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
        axes["workload.scored_tokens"] = [QUICK_SCORED_TOKENS]
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
                 "the papers' numbers are as `src/wdmoe/doc/wdmoe.rst` lists them.")
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
                        help="folder of wdmoe-sweep and wdmoe-run (default: build/bin)")
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
        for program in ("wdmoe-sweep", "wdmoe-run"):
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
            results[name] = SweepResults(folder)
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
