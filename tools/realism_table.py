#!/usr/bin/python3
"""How much each realism of the link changes the latency and each policy's gain: the table of a
realism-ladder sweep (configs/sweeps/realism.json).

Usage: realism_table.py RESULTS_DIR [--bin DIR]

RESULTS_DIR is the sweep's result folder (sweep.csv and points/). The sweep's axes are "cell"
(each value the whole cell object, each adding one realism to the one before it), "policy" and
"run". One table row per cell value: what it adds (the fields that differ from the row before),
the baseline's mean token latency over the runs, its paired change against the row before, and
each other policy's paired latency change against the baseline in that cell (wdmoe-compare:
paired by run, 95 % Student-t interval across runs). The table is printed and written to
RESULTS_DIR/realism.md (atomically). Exit 1 on missing or inconsistent results.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = "top-2 + equal"


class TableError(Exception):
    pass


def read_points(folder):
    """sweep.csv's rows, each with its point folder, in file order."""
    path = os.path.join(folder, "sweep.csv")
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise TableError(f"{path}: {e}") from e
    for axis in ("cell", "policy", "run"):
        if not rows or axis not in rows[0]:
            raise TableError(f"{path}: no \"{axis}\" axis (expected a realism-ladder sweep)")
    for r in rows:
        r["folder"] = os.path.join(folder, "points", f"{int(r['point']):04d}")
    return rows


def in_order(rows, key):
    seen = []
    for r in rows:
        if r[key] not in seen:
            seen.append(r[key])
    return seen


def what_changes(before, after):
    """'link_mapping "nr"; access {...}' : the fields of `after` that differ from `before`."""
    parts = []
    for key in sorted(set(before) | set(after)):
        if key not in after:
            parts.append(f"{key} removed")
        elif before.get(key) != after[key]:
            parts.append(f"{key} {json.dumps(after[key], separators=(', ', ': '))}")
    return "; ".join(parts) or "(nothing)"


def compare(bin_dir, policy_folders, baseline_folders):
    """wdmoe-compare's latency change (mean, (low, high)) of the policy runs against the
    baseline runs (the same runs, paired)."""
    p = subprocess.run([os.path.join(bin_dir, "wdmoe-compare"),
                        "--baseline=" + ",".join(baseline_folders),
                        "--policy=" + ",".join(policy_folders)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise TableError(f"wdmoe-compare failed: {p.stderr.strip()}")
    change = json.loads(p.stdout)["change"]["latency_change_pct"]
    return change["mean"], change["ci"]


def change_text(change):
    mean, (low, high) = change
    if low is None or high is None:
        return f"{mean:+.1f} %"
    return f"{mean:+.1f} % [{low:+.1f}, {high:+.1f}]"


def folders(rows, cell, policy):
    chosen = sorted((r for r in rows if r["cell"] == cell and r["policy"] == policy),
                    key=lambda r: float(r["run"]))
    return [r["folder"] for r in chosen]


def table(rows, bin_dir):
    cells = in_order(rows, "cell")
    policies = in_order(rows, "policy")
    if BASELINE not in policies:
        raise TableError(f"no \"{BASELINE}\" policy to compare with")
    others = [p for p in policies if p != BASELINE]
    header = (["step", "what it adds", f"{BASELINE}: mean latency (ms)",
               "against the step before (paired)"] +
              [f"{p} vs {BASELINE}" for p in others])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    previous = None
    for step, cell in enumerate(cells):
        base = folders(rows, cell, BASELINE)
        latency = [float(r["latency_mean_ms"]) for r in rows
                   if r["cell"] == cell and r["policy"] == BASELINE]
        added = "the ideal link" if previous is None else what_changes(
            json.loads(previous), json.loads(cell))
        against = "-" if previous is None else change_text(
            compare(bin_dir, base, folders(rows, previous, BASELINE)))
        gains = [change_text(compare(bin_dir, folders(rows, cell, p), base)) for p in others]
        lines.append("| " + " | ".join([str(step), added,
                                        f"{sum(latency) / len(latency):.1f}", against] + gains)
                     + " |")
        previous = cell
    return "\n".join(lines) + "\n"


def write_atomically(path, text):
    fd, temp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                                dir=os.path.dirname(path) or ".")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temp, path)


def main(argv):
    parser = argparse.ArgumentParser(prog="realism_table.py", description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--bin", default=os.path.join(REPO, "build", "bin"))
    args = parser.parse_args(argv)
    try:
        text = table(read_points(args.results), args.bin)
    except TableError as e:
        print(f"realism_table.py: {e}", file=sys.stderr)
        return 1
    write_atomically(os.path.join(args.results, "realism.md"), text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
