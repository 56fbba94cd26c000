#!/usr/bin/python3
"""The radio validation's pipeline (tools/validate_radio.py, ./wdmoe validate radio).

Usage: validate-radio-test.py quick REPO_ROOT BIN_DIR (BIN_DIR holds wdmoe-sweep and wdmoe-run)

  quick  validate_radio.py --quick into a temporary folder: exit 0; the table printed with one
         cell and the speed ratio; comparison.csv's numbers equal to a recomputation from the two
         points' transfers.csv, tokens.csv and summary.json; comparison.md and a PNG of the
         figure size written and printed; a rerun skips both points, and a point whose
         summary.json echoes another config (a changed fitted link) runs again
"""

import csv
import json
import math
import os
import re
import subprocess
import sys

import checks as checks_lib
from checks import check, png_size

FIGURE_PX = (1000, 640)


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def p95(values):
    s = sorted(values)
    h = (len(s) - 1) * 0.95
    lo = int(h)
    return s[lo] + (h - lo) * (s[min(lo + 1, len(s) - 1)] - s[lo])


def expected_metrics(folder):
    """The compared numbers of one point, recomputed here from its result files."""
    rows = [r for r in read_csv(os.path.join(folder, "transfers.csv")) if r["phase"] == "decode"]
    dl = [float(r["downlink_ms"]) for r in rows]
    ul = [float(r["uplink_ms"]) for r in rows]
    tokens = [float(r["latency_ms"]) for r in read_csv(os.path.join(folder, "tokens.csv"))
              if r["phase"] == "decode"]
    with open(os.path.join(folder, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    return {"dl_mean": sum(dl) / len(dl), "ul_p95": p95(ul),
            "rt_mean": (sum(dl) + sum(ul)) / len(dl), "tok_mean": sum(tokens) / len(tokens),
            "tok_p95": p95(tokens), "wall_s": summary["timing"]["wall_s"],
            "transport": summary["config_echo"]["transport"]}


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-9)


def check_quick(root, bin_dir, tmp):
    out = os.path.join(tmp, "radio")
    command = [sys.executable, os.path.join(root, "tools", "validate_radio.py"), "--quick",
               "--jobs", "2", "--bin", bin_dir, "--out", out]
    p = subprocess.run(command, capture_output=True, text=True, cwd=tmp)
    check("validate_radio.py --quick exits 0"
          + ("" if p.returncode == 0 else f" ({p.stderr.strip()[-600:]})"), p.returncode == 0)
    check("the table is printed (a header and one cell row)",
          len([l for l in p.stdout.splitlines() if l.startswith("| ")]) == 2)
    check("the speed ratio is printed", "Speed ratio (link wall time / LTE wall time)" in p.stdout)
    rows = read_csv(os.path.join(out, "comparison.csv")) if os.path.isfile(
        os.path.join(out, "comparison.csv")) else []
    check("comparison.csv has one cell", len(rows) == 1)
    points = os.path.join(out, "radio", "points")
    if len(rows) == 1 and os.path.isdir(points):
        metrics = {m["transport"]: m for m in
                   (expected_metrics(os.path.join(points, n)) for n in sorted(os.listdir(points)))}
        check("the two points are a link and an LTE run", sorted(metrics) == ["link", "lte"])
        row = rows[0]
        for transport in ("link", "lte"):
            for key in ("dl_mean", "ul_p95", "rt_mean", "tok_mean", "tok_p95"):
                check(f"comparison.csv {transport}_{key}_ms is the points' own",
                      close(float(row[f"{transport}_{key}_ms"]), metrics[transport][key]))
        err = (metrics["link"]["rt_mean"] - metrics["lte"]["rt_mean"]) / metrics["lte"]["rt_mean"]
        check("the round trip's error is (link - LTE) / LTE", close(float(row["err_rt_mean"]), err))
        check("the speed ratio is the link's wall time over LTE's",
              close(float(row["speed_ratio"]), metrics["link"]["wall_s"] / metrics["lte"]["wall_s"]))
    for name in ("comparison.md", "radio-validation.png"):
        path = os.path.join(out, name)
        check(f"{name} written and its path printed", os.path.isfile(path)
              and path in p.stdout.split())
    figure = os.path.join(out, "radio-validation.png")
    check(f"the figure is a PNG of {FIGURE_PX[0]} x {FIGURE_PX[1]} px",
          os.path.isfile(figure) and png_size(figure) == FIGURE_PX)

    p = subprocess.run(command, capture_output=True, text=True, cwd=tmp)
    skipped = re.findall(r"\((\d+) run, (\d+) skipped\)", p.stderr + p.stdout)
    check(f"a rerun exits 0 and skips both points ({skipped})",
          p.returncode == 0 and skipped == [("0", "2")])
    # A changed base (the fitted link) makes its points stale: they run again.
    summary_path = os.path.join(points, "0000", "summary.json")
    if os.path.isfile(summary_path):
        with open(summary_path, encoding="utf-8") as f:
            summary = json.load(f)
        summary["config_echo"]["cell"]["bandwidth_mhz"] = 10
        with open(summary_path, "w", encoding="utf-8") as f:
            json.dump(summary, f)
    p = subprocess.run(command, capture_output=True, text=True, cwd=tmp)
    skipped = re.findall(r"\((\d+) run, (\d+) skipped\)", p.stderr + p.stdout)
    check(f"a point made with another config runs again ({skipped})",
          p.returncode == 0 and skipped == [("1", "1")])


if __name__ == "__main__":
    sys.exit(checks_lib.main({"quick": check_quick},
                             "usage: validate-radio-test.py quick REPO_ROOT BIN_DIR", 2))
