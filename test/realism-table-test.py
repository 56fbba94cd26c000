#!/usr/bin/python3
"""tools/realism_table.py on a small realism-ladder sweep: three cells (the ideal link, then the
NR mapping, then TDD) x two policies x two runs of two scored tokens, run by wdmoe-sweep. The
table must have one row per cell in the sweep's order, name what each step adds, and give the
baseline's mean latency and the paired changes that sweep.csv gives (computed here: the mean
over runs of each run's change).

Usage: realism-table-test.py CHECK REPO_ROOT BIN_DIR, CHECK "table".
"""

import csv
import json
import os
import re
import subprocess
import sys

import checks as checks_lib
from checks import check

CELL = {"bandwidth_mhz": 100, "duplex": "shared", "radius_m": 500, "min_distance_m": 35,
        "propagation": "3gpp-uma", "carrier_ghz": 3.5, "coherence_time_ms": 10}
POLICIES = [{"name": "top-2 + equal"},
            {"name": "top-2 + minmax", "allocation": "minmax", "minmax_floor": 0.5}]


def ladder():
    nr = dict(CELL, link_mapping="nr")
    tdd = dict(nr, duplex="tdd", tdd={"pattern": "DSUUU"})
    return [CELL, nr, tdd]


def mean(values):
    return sum(values) / len(values)


def check_table(root, bin_dir, tmp):
    sweep = {"description": "realism-table-test", "base": os.path.join(root, "configs",
                                                                       "default.json"),
             "axes": {"workload.scored_tokens": [2], "cell": ladder(), "policy": POLICIES,
                      "run": [1, 2]}}
    path = os.path.join(tmp, "ladder.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(sweep, f)
    p = subprocess.run([os.path.join(bin_dir, "wdmoe-sweep"), path, "--jobs", "2"], cwd=tmp,
                       capture_output=True, text=True)
    check("wdmoe-sweep ran the ladder" + ("" if p.returncode == 0 else f": {p.stderr[-300:]}"),
          p.returncode == 0)
    folder = os.path.join(tmp, "results", "ladder")
    p = subprocess.run([sys.executable, os.path.join(root, "tools", "realism_table.py"), folder,
                        "--bin", bin_dir], capture_output=True, text=True)
    check("realism_table.py exits 0" + ("" if p.returncode == 0 else f": {p.stderr}"),
          p.returncode == 0)
    lines = [line for line in p.stdout.splitlines() if line.startswith("| ")][2:]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    check(f"one row per cell ({len(rows)})", len(rows) == 3)
    if len(rows) != 3:
        return
    check("step 0 is the ideal link", rows[0][1] == "the ideal link")
    check(f"step 1 adds the mapping ({rows[1][1]})", rows[1][1] == 'link_mapping "nr"')
    check(f"step 2 adds TDD ({rows[2][1]})",
          rows[2][1] == 'duplex "tdd"; tdd {"pattern": "DSUUU"}')
    with open(os.path.join(folder, "sweep.csv"), encoding="utf-8", newline="") as f:
        points = list(csv.DictReader(f))
    cells = [json.dumps(c) for c in ladder()]

    def latencies(step, policy):
        want = json.loads(cells[step])
        chosen = sorted((r for r in points if json.loads(r["cell"]) == want
                         and r["policy"] == policy), key=lambda r: float(r["run"]))
        return [float(r["latency_mean_ms"]) for r in chosen]

    def first_number(text):
        return float(re.match(r"[+-]?[\d.]+", text).group(0))

    for step in range(3):
        base = latencies(step, "top-2 + equal")
        check(f"step {step}: baseline mean {rows[step][2]} is sweep.csv's {mean(base):.2f}",
              abs(first_number(rows[step][2]) - mean(base)) <= 0.05 + 1e-9)
        minmax = latencies(step, "top-2 + minmax")
        gain = mean([m / b - 1 for m, b in zip(minmax, base)]) * 100
        check(f"step {step}: minmax's paired change {rows[step][4]} is {gain:+.2f} %",
              abs(first_number(rows[step][4]) - gain) <= 0.05 + 1e-9)
        if step > 0:
            before = latencies(step - 1, "top-2 + equal")
            change = mean([a / b - 1 for a, b in zip(base, before)]) * 100
            check(f"step {step}: change against the step before {rows[step][3]} is "
                  f"{change:+.2f} %", abs(first_number(rows[step][3]) - change) <= 0.05 + 1e-9)
    check("realism.md written", os.path.isfile(os.path.join(folder, "realism.md")))


if __name__ == "__main__":
    sys.exit(checks_lib.main({"table": check_table}, __doc__, 2))
