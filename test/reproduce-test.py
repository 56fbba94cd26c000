#!/usr/bin/python3
"""The paper reproductions (configs/paper/, tools/reproduce.py).

Usage: reproduce-test.py CHECK REPO_ROOT BIN_DIR (BIN_DIR holds wdmoe-sweep and wdmoe-run), CHECK
one of
  policies  the paper sweeps' policy objects equal those of the same name in
            configs/policies.json (its shared "policy" defaults merged with the entry), and the
            Orin Nano base scenario is the comparison's cell
  configs   every point of every paper sweep passes wdmoe-sweep's checks (a copy of the real
            wdmoe-sweep beside a fake wdmoe-run that only writes a summary), and every sweep
            file has a reproduction in tools/reproduce.py
  quick     tools/reproduce.py --quick into a temporary folder: exit 0, every expected figure
            (a PNG of the figure size), a report.md whose table rows are the sweep.csv numbers
            and whose links exist; a rerun skips every point
"""

import csv
import glob
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys

import checks as checks_lib
from checks import check, png_size

FIGURE_PX = (1000, 640)
EXPECTED_FIGURES = {
    "wdmoe-devices": ["latency-vs-devices.png"],
    "wdmoe-bandwidth": ["latency-vs-bandwidth.png"],
    "adapmoe-threshold": ["experts-perplexity-vs-threshold.png"],
    "adapmoe-memory": ["cache-vs-memory.png"],
    "serving-load": ["serving-vs-load.png"],
}
RATE_AXIS = "workload.requests.rate_per_s"
# The report's first table column -> the sweep axis it shows.
X_COLUMNS = {"devices": "devices.count", "bandwidth (MHz)": "cell.bandwidth_mhz",
             "T": "policy.adaptive_threshold", "memory fraction": "devices.memory_fraction",
             "load (requests/s)": RATE_AXIS}
# The report's value columns -> (sweep.csv column or summary.<field>, scale of the printed value).
VALUE_COLUMNS = {"mean latency (ms) [95 % CI]": ("latency_mean_ms", 1), "p95 latency (ms)":
                 ("latency_p95_ms", 1), "experts / token-layer": ("experts_per_token_layer", 1),
                 "perplexity": ("perplexity", 1), "cache hit rate": ("cache_hit_rate", 1),
                 "prefetch accuracy": ("prefetch_accuracy", 100),
                 "single-expert decisions": ("summary.single_expert_rate", 100),
                 "KL (nats)": ("kl_divergence", 1),
                 "TTFT p50 (s)": ("ttft_p50_ms", 1e-3), "TTFT p99 (s)": ("ttft_p99_ms", 1e-3),
                 "TPOT p50 (s)": ("tpot_p50_ms", 1e-3), "TPOT p99 (s)": ("tpot_p99_ms", 1e-3),
                 "throughput (requests/s)": ("throughput_requests_per_s", 1),
                 "energy per output token (J)": ("summary.energy.per_output_token_j", 1)}
# Columns that are a change of means against a baseline row: (value column, baseline {axis: value}).
CHANGE_COLUMNS = {"experts vs T = 0": ("experts_per_token_layer",
                                       {"policy.adaptive_threshold": 0.0})}
# Paired changes: (kind, baseline {axis: value}); "latency" is the mean over runs of each run's
# change, "perplexity" 100 (exp(mean per-token NLL difference) - 1) from the points' tokens.csv.
PAIRED_COLUMNS = {"latency vs top-2 + equal [95 % CI]": ("latency", {"policy": "top-2 + equal"}),
                  "perplexity vs top-2 + equal [95 % CI]": ("perplexity",
                                                            {"policy": "top-2 + equal"}),
                  "perplexity vs T = 0 [95 % CI]": ("perplexity",
                                                    {"policy.adaptive_threshold": 0.0})}


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def paper_sweeps(root):
    """{name: (path, sweep json)} of the sweep files in configs/paper."""
    sweeps = {}
    for path in sorted(glob.glob(os.path.join(root, "configs", "paper", "*.json"))):
        data = load(path)
        if "base" in data:
            sweeps[os.path.basename(path)[:-5]] = (path, data)
    return sweeps


# --- policies -----------------------------------------------------------------------------------

def check_policies(root, _bin_dir, _tmp):
    comparison_path = os.path.join(root, "configs", "policies.json")
    comparison = load(comparison_path)
    shared = comparison.get("policy", {})
    expected = {e["name"]: dict(shared, **e) for e in comparison["policies"]}
    sweeps = paper_sweeps(root)
    check("configs/paper has the five reproductions' sweeps",
          sorted(sweeps) == sorted(EXPECTED_FIGURES))
    for name, (path, sweep) in sweeps.items():
        values = sweep.get("axes", {}).get("policy", [])
        check(f"{name}: has a policy axis", bool(values))
        for value in values:
            want = expected.get(value.get("name"))
            check(f"{name}: policy \"{value.get('name')}\" equals configs/policies.json's"
                  + ("" if value == want else f" (there: {json.dumps(want)}; fix with "
                     "tools/reproduce.py --sync-policies)"), value == want)
        # A policy value replaces the whole policy object: a policy.* axis must come after it.
        axes = list(sweep.get("axes", {}))
        late = [a for a in axes if a.startswith("policy.") and "policy" in axes
                and axes.index(a) < axes.index("policy")]
        check(f"{name}: policy.* axes come after the policy axis ({', '.join(late) or 'ok'})",
              not late)
    # The Orin Nano base scenario: the comparison's cell, its policy the baseline entry.
    cell_path = os.path.join(root, "configs", "paper", "orin-nano-cell.json")
    cell = load(cell_path)
    comparison_dir, cell_dir = os.path.dirname(comparison_path), os.path.dirname(cell_path)

    def resolved(config, folder):
        c = {k: v for k, v in config.items()
             if k not in ("description", "policy", "policies", "baseline", "statistics")}
        c["model"] = dict(c["model"], path=os.path.normpath(os.path.join(folder,
                                                                         c["model"]["path"])))
        c["workload"] = dict(c["workload"], text=os.path.normpath(
            os.path.join(folder, c["workload"]["text"])))
        return c

    check("orin-nano-cell.json is configs/policies.json's cell (paths resolved)",
          resolved(cell, cell_dir) == resolved(comparison, comparison_dir))
    baseline = comparison.get("baseline", comparison["policies"][0]["name"])
    check("orin-nano-cell.json's policy is the comparison's baseline with its shared defaults",
          cell.get("policy") == expected[baseline])
    check("configs/paper/profiles is configs/profiles",
          os.path.samefile(os.path.join(root, "configs", "paper", "profiles"),
                           os.path.join(root, "configs", "profiles")))


# --- configs ------------------------------------------------------------------------------------

FAKE_RUN = """#!/bin/sh
# A fake wdmoe-run: writes a minimal summary.json into --outDir.
for a in "$@"; do
  case "$a" in --outDir=*) out="${a#--outDir=}" ;; esac
done
cat >"$out/summary.json" <<'EOF'
{"latency_ms": {"mean": 1, "p50": 1, "p95": 1, "p99": 1}, "policy": {"name": "fake"},
 "decode_tokens": 1, "experts_per_token_layer": 2, "cache_hit_rate": 1,
 "prefetch_accuracy": null, "perplexity": 1}
EOF
"""


def check_configs(root, bin_dir, tmp):
    fake_bin = os.path.join(tmp, "bin")
    os.makedirs(fake_bin)
    shutil.copy2(os.path.join(bin_dir, "wdmoe-sweep"), fake_bin)
    with open(os.path.join(fake_bin, "wdmoe-run"), "w") as f:
        f.write(FAKE_RUN)
    os.chmod(os.path.join(fake_bin, "wdmoe-run"), 0o755)
    for name, (path, sweep) in paper_sweeps(root).items():
        p = subprocess.run([os.path.join(fake_bin, "wdmoe-sweep"), path, "--jobs", "2"],
                           cwd=tmp, capture_output=True, text=True)
        check(f"{name}: every point passes wdmoe-sweep's checks"
              + ("" if p.returncode == 0 else f" ({p.stderr.strip()[-300:]})"), p.returncode == 0)
        points = math.prod(len(v) for v in sweep["axes"].values())
        csv_path = os.path.join(tmp, "results", name, "sweep.csv")
        rows = read_csv(csv_path) if os.path.isfile(csv_path) else []
        check(f"{name}: all {points} points (the axes' product) ran", len(rows) == points)
    sys.path.insert(0, os.path.join(root, "tools"))
    import reproduce  # noqa: E402 (the orchestrator's own list of reproductions)
    try:
        found = reproduce.find_sweeps(os.path.join(root, "configs", "paper"))
        check("tools/reproduce.py has a reproduction for every sweep file", True)
    except reproduce.ReproduceError as e:
        found = {}
        check(f"tools/reproduce.py has a reproduction for every sweep file ({e})", False)
    check("... and expects the figures this test expects",
          {r["sweep"]: r["figures"] for r in reproduce.REPRODUCTIONS} == EXPECTED_FIGURES
          and sorted(found) == sorted(EXPECTED_FIGURES))


# --- quick --------------------------------------------------------------------------------------

def read_csv(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def number(text):
    try:
        return float(text)
    except ValueError:
        return text


def report_tables(text):
    """{sweep name: [first table's rows as dicts]} from the report's sections."""
    tables = {}
    for section in text.split("\n## ")[1:]:
        m = re.search(r"Sweep `configs/paper/([\w-]+)\.json`", section)
        if not m:
            continue
        lines = section.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("| "))
        block = list(itertools.takewhile(lambda line: line.startswith("|"), lines[start:]))
        header = [c.strip() for c in block[0].strip("|").split("|")]
        tables[m.group(1)] = [dict(zip(header, (c.strip() for c in line.strip("|").split("|"))))
                              for line in block[2:]]
    return tables


def printed(cell):
    """(value, half of the last printed digit) of a report cell like '12.34', '+1.5 %', '1.31x',
    '12.34 [11.02, 13.66]' or '-3.1 [-4.0, -2.2] %: faster' (the value before the interval)."""
    m = re.match(r"([+-]?\d+(?:\.(\d+))?)\s*(?:\[[^]]*\])?\s*(?:%|x)?", cell)
    if not m:
        return None, None
    return float(m.group(1)), 0.5 * 10 ** -len(m.group(2) or "") + 1e-9


def summary_field(summary, dotted):
    """A summary.json field by its dotted path ("energy.per_output_token_j"); None if absent."""
    for part in dotted.split("."):
        if not isinstance(summary, dict) or part not in summary:
            return None
        summary = summary[part]
    return summary


def check_knees(out, text):
    """The serving section's knee table: per policy the load at which TPOT p99 first reaches
    twice its value at the lightest load, computed here from sweep.csv."""
    section = text.split("## Serving many users")[1].split("\n## ")[0]
    block = [line for line in section.splitlines() if line.startswith("| ")]
    header_at = next(i for i, line in enumerate(block) if "knee (requests/s)" in line)
    header = [c.strip() for c in block[header_at].strip("|").split("|")]
    rows = [dict(zip(header, (c.strip() for c in line.strip("|").split("|"))))
            for line in block[header_at + 2:]]  # after the header's separator row
    csv_rows = read_csv(os.path.join(out, "serving-load", "sweep.csv"))
    policies = sorted({r["policy"] for r in csv_rows})
    check(f"serving-load: a knee row per policy ({len(rows)} for {len(policies)})",
          sorted(r["policy"] for r in rows) == policies)
    for row in rows:
        points = sorted((float(r[RATE_AXIS]), float(r["tpot_p99_ms"])) for r in csv_rows
                        if r["policy"] == row["policy"])
        knee = next((x for x, y in points if y >= 2 * points[0][1]), None)
        want = f"{knee:g}" if knee is not None else f"beyond {points[-1][0]:g}"
        check(f"serving-load: {row['policy']}'s knee {row['knee (requests/s)']} is sweep.csv's "
              f"({want})", row["knee (requests/s)"] == want)


def mean_of(csv_rows, summaries, where, key):
    values = []
    for row in csv_rows:
        if all(number(row[a]) == v for a, v in where.items()):
            v = row[key] if not key.startswith("summary.") else summary_field(
                summaries[row["point"]], key[len("summary."):])
            if v not in (None, ""):
                values.append(float(v))
    return sum(values) / len(values) if values else None


def paired_change(kind, csv_rows, where, base):
    """The paired change of the rows at `where` against those at `base`, matched by run,
    computed here from sweep.csv (latency) or the points' tokens.csv (perplexity)."""
    def runs(w):
        return {r.get("run", "1"): r for r in csv_rows
                if all(number(r[a]) == v for a, v in w.items())}
    policy, baseline = runs(where), runs(dict(where, **base))
    if not policy or sorted(policy) != sorted(baseline):
        return None
    if kind == "latency":
        return sum(float(policy[k]["latency_mean_ms"]) / float(baseline[k]["latency_mean_ms"]) - 1
                   for k in policy) / len(policy) * 100
    diffs = []
    for k in policy:
        nll = [[float(t["nll"]) for t in read_csv(os.path.join(r["_folder"], "tokens.csv"))]
               for r in (policy[k], baseline[k])]
        diffs += [a - b for a, b in zip(*nll)]
    return math.expm1(sum(diffs) / len(diffs)) * 100


def check_table(name, out, rows):
    folder = os.path.join(out, name)
    csv_rows = read_csv(os.path.join(folder, "sweep.csv"))
    for r in csv_rows:
        r["_folder"] = os.path.join(folder, "points", f"{int(r['point']):04d}")
    summaries = {r["point"]: load(os.path.join(r["_folder"], "summary.json")) for r in csv_rows}
    x_column = next(iter(rows[0])) if rows else None
    axis = X_COLUMNS.get(x_column)
    check(f"{name}: the table's first column ({x_column}) is a sweep axis", axis is not None)
    if axis is None:
        return
    combos = {(number(r[axis]), r["policy"]) for r in csv_rows}
    check(f"{name}: one table row per {axis} x policy ({len(rows)} rows, {len(combos)} combos)",
          len(rows) == len(combos) and {(number(r[x_column]), r["policy"]) for r in rows}
          == combos)
    mismatches, compared = [], 0
    for row in rows:
        where = {axis: number(row[x_column]), "policy": row["policy"]}
        for column, cell in row.items():
            if column in VALUE_COLUMNS:
                key, scale = VALUE_COLUMNS[column]
                want = mean_of(csv_rows, summaries, where, key)
                want = None if want is None else want * scale
            elif column.startswith("speedup over "):
                base = {"policy": column[len("speedup over "):].replace(" [95 % CI]", "")}
                change = paired_change("latency", csv_rows, where, base)
                want = None if change is None else 1 / (1 + change / 100)
            elif column in PAIRED_COLUMNS:
                kind, base = PAIRED_COLUMNS[column]
                want = paired_change(kind, csv_rows, where, base)
            elif column in CHANGE_COLUMNS:
                key, base = CHANGE_COLUMNS[column]
                want = (mean_of(csv_rows, summaries, where, key)
                        / mean_of(csv_rows, summaries, dict(where, **base), key) - 1) * 100
            else:
                continue
            got, tolerance = printed(cell)
            compared += 1
            if want is None:
                if cell != "-":
                    mismatches.append(f"{where} {column}: {cell}, sweep.csv has none")
            elif cell == "-" and abs(want) < 1e-12:
                pass  # the baseline against itself
            elif got is None or abs(got - want) > tolerance:
                mismatches.append(f"{where} {column}: {cell}, sweep.csv gives {want:.6g}")
    check(f"{name}: {compared} table cells match sweep.csv / summary.json "
          f"({'; '.join(mismatches[:3]) or 'all'})", compared > 0 and not mismatches)


def check_quick(root, bin_dir, tmp):
    out = os.path.join(tmp, "paper")
    command = [sys.executable, os.path.join(root, "tools", "reproduce.py"), "--quick",
               "--jobs", "2", "--bin", bin_dir, "--out", out]
    p = subprocess.run(command, capture_output=True, text=True, cwd=tmp)
    check("reproduce.py --quick exits 0"
          + ("" if p.returncode == 0 else f" ({p.stderr.strip()[-400:]})"), p.returncode == 0)
    for name, figures in EXPECTED_FIGURES.items():
        for figure in figures:
            path = os.path.join(out, name, "figures", figure)
            check(f"{name}/figures/{figure}: a PNG of {FIGURE_PX[0]} x {FIGURE_PX[1]} px",
                  os.path.isfile(path) and png_size(path) == FIGURE_PX)
            check(f"... its path is printed", path in p.stdout.split())
    report_path = os.path.join(out, "report.md")
    check("report.md written and printed", os.path.isfile(report_path)
          and report_path in p.stdout.split())
    if not os.path.isfile(report_path):
        return
    with open(report_path, encoding="utf-8") as f:
        text = f.read()
    links = re.findall(r"\]\(([^)]+)\)", text)
    check(f"report.md links every figure ({len(links)} links)",
          all(f"{n}/figures/{f}" in links for n, fs in EXPECTED_FIGURES.items() for f in fs))
    check("... and every link exists", all(os.path.isfile(os.path.join(out, link))
                                           for link in links))
    check("report.md has the 'where our setup differs' section",
          "## Where our setup differs" in text)
    check("report.md no temporary file left", not [n for n in os.listdir(out)
                                                     if n.startswith(".report.md")])
    tables = report_tables(text)
    check("report.md has a table for every sweep", sorted(tables) == sorted(EXPECTED_FIGURES))
    for name, rows in tables.items():
        check_table(name, out, rows)
    check_knees(out, text)
    for anchor in ("25 % fewer activated experts", "25.8 %", "87 %", "1.35x", "WDMoE: large"):
        check(f"report.md has the papers' anchor '{anchor}'", anchor in text)

    p = subprocess.run(command, capture_output=True, text=True, cwd=tmp)
    skipped = re.findall(r"\((\d+) run, (\d+) skipped\)", p.stderr + p.stdout)
    check(f"a rerun exits 0 and skips every point ({skipped})", p.returncode == 0
          and len(skipped) == len(EXPECTED_FIGURES) and all(r == "0" for r, _ in skipped))

    # A sweep that fails (a bad point): exit 1, the others still reported, the report says so.
    bad = os.path.join(tmp, "bad-configs")
    os.makedirs(bad)
    for name, (path, sweep) in paper_sweeps(root).items():
        sweep = dict(sweep, base=os.path.join(os.path.dirname(path), sweep["base"]))
        if name == "wdmoe-devices":
            sweep["axes"] = dict(sweep["axes"], **{"devices.count": [0]})
        with open(os.path.join(bad, name + ".json"), "w") as f:
            json.dump(sweep, f)
    p = subprocess.run(command + ["--configs", bad], capture_output=True, text=True, cwd=tmp)
    check("a failing sweep: exits 1 and names it",
          p.returncode == 1 and "sweep wdmoe-devices failed" in p.stderr)
    with open(report_path, encoding="utf-8") as f:
        text = f.read()
    check("... the report says it is incomplete and has the other sweeps' tables",
          "**Incomplete:**" in text and "No results" in text
          and sorted(report_tables(text)) == sorted(set(EXPECTED_FIGURES) - {"wdmoe-devices"}))


def main():
    checks = {"policies": check_policies, "configs": check_configs, "quick": check_quick}
    return checks_lib.main(checks, __doc__, path_args=2)


if __name__ == "__main__":
    sys.exit(main())
