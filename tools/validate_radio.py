#!/usr/bin/python3
"""The radio validation: the same cells under the abstract link ("transport": "link") and ns-3's
LTE ("transport": "lte"), compared per cell.

Usage: validate_radio.py [--jobs N] [--quick] [--bin DIR] [--out DIR] [--sweep FILE]

  --jobs N      wdmoe-run processes at a time (default: the number of cores)
  --quick       the first cell of the sweep (its first value on every axis) under both
                transports, with a 4-token prompt and 2 scored tokens: a test of the pipeline in
                seconds, not a result. Default --out: results/validation/radio-quick
  --bin DIR     where wdmoe-sweep and wdmoe-run are (default: build/bin of this repository;
                ./wdmoe validate radio builds them first)
  --out DIR     the results folder (default: results/validation/radio under the current folder)
  --sweep FILE  the cells (default: configs/validation/radio.json): a sweep file whose axes
                include "transport" with the values "link" and "lte"; every other axis is a
                property of the cell

Runs the sweep with wdmoe-sweep into OUT/<sweep name>/ (resumable: complete points are skipped,
unless their summary.json echoes another config than the sweep's base with the point's fields,
as after a change of the fitted link in the base file),
then pairs each cell's link and LTE points and compares, per cell:
  DL, UL        per-layer transfer time of one device's request (downlink) and answer (uplink),
                mean and p95 over the decode exchanges of transfers.csv (Send to arrival)
  round trip    DL + UL of the same exchange (radio only: the device's compute is the same on
                both transports), mean and p95
  token         decode token latency (tokens.csv), mean and p95
and the relative error (link - LTE) / LTE of each. A cell passes when the round trip's and the
token latency's means are within 15 % and their p95 within 25 %. The speed ratio is the link
run's wall time over the LTE run's (summary.json timing.wall_s: the simulation, not the set-up).
Prints the table and writes OUT/comparison.csv, OUT/comparison.md and OUT/radio-validation.png
(each atomically). Exit status: 0 when everything ran (whether or not every cell passes), 1 when
a run or the figure failed, 2 on bad arguments.
"""

import argparse
import csv
import io
import json
import math
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "plots"))
sys.path.insert(0, os.path.join(REPO, "tools"))
import figures  # noqa: E402 (the figures' size, caption and atomic writes)
import wdmoe_results  # noqa: E402 (result files are read in one place)
from reproduce import sweep_cwd, write_atomically, ReproduceError  # noqa: E402

TRANSPORT_AXIS = "transport"
MEAN_TOLERANCE = 0.15
P95_TOLERANCE = 0.25
QUICK_PROMPT_TOKENS = 4
QUICK_SCORED_TOKENS = 2
FIGURE_NAME = "radio-validation.png"
# (key, label) of every compared quantity, in the table's order; the judged ones and their
# tolerance.
METRICS = [("dl_mean", "DL mean"), ("dl_p95", "DL p95"), ("ul_mean", "UL mean"),
           ("ul_p95", "UL p95"), ("rt_mean", "RT mean"), ("rt_p95", "RT p95"),
           ("tok_mean", "token mean"), ("tok_p95", "token p95")]
JUDGED = {"rt_mean": MEAN_TOLERANCE, "tok_mean": MEAN_TOLERANCE, "rt_p95": P95_TOLERANCE,
          "tok_p95": P95_TOLERANCE}


class ValidationError(Exception):
    pass


# --- statistics ---------------------------------------------------------------------------------

def mean(values):
    return sum(values) / len(values) if values else math.nan


def p95(values):
    """The 95th percentile, linear between order statistics (numpy's default)."""
    if not values:
        return math.nan
    s = sorted(values)
    h = (len(s) - 1) * 0.95
    lo = math.floor(h)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (h - lo) * (s[hi] - s[lo])


def relative(link, lte):
    return (link - lte) / lte if lte and not math.isnan(lte) else math.nan


# --- results ------------------------------------------------------------------------------------

def point_metrics(run):
    """The compared quantities of one point (a wdmoe_results.Run)."""
    path = os.path.join(run.folder, "transfers.csv")
    rows = [r for r in wdmoe_results.read_csv(path) if r["phase"] == "decode"]
    try:
        dl = [float(r["downlink_ms"]) for r in rows]
        ul = [float(r["uplink_ms"]) for r in rows]
    except (KeyError, ValueError) as e:
        raise ValidationError(f"{path}: no numeric downlink_ms/uplink_ms columns: {e}") from e
    if not rows:
        raise ValidationError(f"{path}: no decode exchanges (score more than one token)")
    rt = [d + u for d, u in zip(dl, ul)]
    tokens = run.decode_latencies_ms()
    return {"dl_mean": mean(dl), "dl_p95": p95(dl), "ul_mean": mean(ul), "ul_p95": p95(ul),
            "rt_mean": mean(rt), "rt_p95": p95(rt), "tok_mean": mean(tokens),
            "tok_p95": p95(tokens), "exchanges": len(rows), "tokens": len(tokens),
            "wall_s": float(run.summary.get("timing", {}).get("wall_s", math.nan))}


def cells_of(sweep):
    """[(cell {axis: value}, link metrics, LTE metrics)] in the sweep's order."""
    if TRANSPORT_AXIS not in sweep.axes:
        raise ValidationError(f"{sweep.folder}: the sweep has no \"{TRANSPORT_AXIS}\" axis")
    cell_axes = [a for a in sweep.axes if a != TRANSPORT_AXIS]
    cells = {}
    for row, run in zip(sweep.rows, sweep.points):
        key = tuple(row[a] for a in cell_axes)
        cells.setdefault(key, {})[row[TRANSPORT_AXIS]] = point_metrics(run)
    out = []
    for key, by_transport in cells.items():
        if set(by_transport) != {"link", "lte"}:
            raise ValidationError(f"{sweep.folder}: cell {dict(zip(cell_axes, key))} has "
                                  f"transports {sorted(by_transport)}, not link and lte")
        out.append((dict(zip(cell_axes, key)), by_transport["link"], by_transport["lte"]))
    return out


def verdict(link, lte):
    """(passes, {metric: relative error}) of one cell."""
    errors = {k: relative(link[k], lte[k]) for k, _ in METRICS}
    passes = all(abs(errors[k]) <= tol for k, tol in JUDGED.items())
    return passes, errors


def cell_label(cell, constant=()):
    """'4 dev, 150 m, static' for the usual axes; 'axis=value' for others; axes in constant
    (one value over the whole sweep, e.g. cell.propagation in radio-uma.json) name no cell."""
    parts = []
    for axis, value in cell.items():
        if axis in constant:
            continue
        if axis == "devices.count":
            parts.append(f"{value} dev")
        elif axis == "devices.distance_m":
            parts.append(f"{value} m")
        elif axis == "cell.mobility":
            parts.append("static" if value == "static" else "moving")
        elif not axis.startswith("workload."):  # --quick's token counts name no cell
            parts.append(f"{axis}={value}")
    return ", ".join(parts)


# --- outputs ------------------------------------------------------------------------------------

def constant_axes(cells):
    """The cell axes with one value in every cell (when there is more than one cell)."""
    if len(cells) < 2:
        return set()
    return {a for a in cells[0][0] if len({str(c[a]) for c, _, _ in cells}) == 1}


def comparison_rows(cells):
    rows = []
    constant = constant_axes(cells)
    for cell, link, lte in cells:
        passes, errors = verdict(link, lte)
        row = {"cell": cell_label(cell, constant)}
        row.update({f"cell.{a}": v for a, v in cell.items()})
        for key, _ in METRICS:
            row[f"link_{key}_ms"] = link[key]
            row[f"lte_{key}_ms"] = lte[key]
            row[f"err_{key}"] = errors[key]
        row.update({"link_wall_s": link["wall_s"], "lte_wall_s": lte["wall_s"],
                    "speed_ratio": link["wall_s"] / lte["wall_s"] if lte["wall_s"] else math.nan,
                    "exchanges_link": link["exchanges"], "exchanges_lte": lte["exchanges"],
                    "pass": "pass" if passes else "FAIL"})
        rows.append(row)
    return rows


def csv_text(rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return out.getvalue()


def pct(value):
    return "-" if math.isnan(value) else f"{100 * value:+.0f}%"


def table_lines(rows):
    """The markdown table: per cell, each quantity as 'link / LTE (error)'."""
    header = ["cell"] + [f"{label} ms link / LTE (err)" for _, label in METRICS] + ["verdict"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["cell"]]
        for key, _ in METRICS:
            mark = "" if key not in JUDGED or abs(row[f"err_{key}"]) <= JUDGED[key] else " **x**"
            cells.append(f"{row[f'link_{key}_ms']:.1f} / {row[f'lte_{key}_ms']:.1f} "
                         f"({pct(row[f'err_{key}'])}){mark}")
        cells.append(row["pass"])
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def summary_lines(rows):
    passed = sum(r["pass"] == "pass" for r in rows)
    link_wall = sum(r["link_wall_s"] for r in rows)
    lte_wall = sum(r["lte_wall_s"] for r in rows)
    worst = {k: max(rows, key=lambda r: abs(r[f"err_{k}"]) if not math.isnan(r[f"err_{k}"])
                    else -1) for k in JUDGED}
    lines = [f"{passed} of {len(rows)} cells pass (round trip and token latency: means within "
             f"{100 * MEAN_TOLERANCE:.0f} %, p95 within {100 * P95_TOLERANCE:.0f} % of LTE).",
             "Largest errors: " + "; ".join(
                 f"{label} {pct(worst[k][f'err_{k}'])} ({worst[k]['cell']})"
                 for k, label in METRICS if k in JUDGED) + ".",
             f"Speed ratio (link wall time / LTE wall time): {link_wall:.2f} s / {lte_wall:.1f} s "
             f"= {link_wall / lte_wall:.4f} over all cells (LTE is {lte_wall / link_wall:.0f}x "
             f"slower); per cell {min(r['speed_ratio'] for r in rows):.4f} to "
             f"{max(r['speed_ratio'] for r in rows):.4f}."]
    return lines


def figure(cells, runs, out_dir):
    """Per cell, link against LTE: the mean (bar) and p95 (tick) of DL, UL, round trip and
    token latency; returns the path."""
    titles = [("dl", "downlink per layer (ms)"), ("ul", "uplink per layer (ms)"),
              ("rt", "round trip DL + UL per layer (ms)"), ("tok", "decode token latency (ms)")]
    constant = constant_axes(cells)
    common = ", ".join(f"{a}={cells[0][0][a]}" for a in sorted(constant))
    fig, axes = figures.new_figure("Abstract link vs ns-3 LTE on the validation cells "
                                   + (f"({common}) " if common else "")
                                   + "(bars: mean, ticks: p95)", runs, panels=4)
    x = list(range(len(cells)))
    width = 0.4
    for ax, (key, title) in zip(axes, titles):
        for offset, (name, index, color) in ((-width / 2, ("link", 1, "tab:blue")),
                                             (width / 2, ("LTE", 2, "tab:orange"))):
            means = [c[index][f"{key}_mean"] for c in cells]
            highs = [c[index][f"{key}_p95"] for c in cells]
            xs = [i + offset for i in x]
            ax.bar(xs, means, width, color=color, label=name)
            ax.scatter(xs, highs, marker="_", s=120, color="black", zorder=3)
        ax.set_title(title, fontsize="medium")
        ax.set_yscale("log")
        ax.set_xticks(x)
        ax.set_xticklabels([cell_label(c[0], constant) for c in cells], rotation=90, fontsize=6)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize="small")
    return figures.save_atomically(fig, out_dir, FIGURE_NAME)


# --- running ------------------------------------------------------------------------------------

def quick_sweep(path, out_dir):
    """The first cell of the sweep under both transports, few tokens: a derived sweep file of
    the same name in OUT/.quick-sweeps/ (so the same result folder name)."""
    with open(path, encoding="utf-8") as f:
        sweep = json.load(f)
    if "axes" not in sweep or TRANSPORT_AXIS not in sweep["axes"]:
        raise ValidationError(f"{path}: --quick needs a sweep with \"axes\" holding "
                              f"\"{TRANSPORT_AXIS}\"")
    sweep["base"] = os.path.abspath(os.path.join(os.path.dirname(path), sweep["base"]))
    sweep["description"] = f"--quick version of {path} (written by tools/validate_radio.py)"
    sweep["axes"] = {a: (v if a == TRANSPORT_AXIS else v[:1]) for a, v in sweep["axes"].items()}
    sweep["axes"]["workload.prompt_tokens"] = [QUICK_PROMPT_TOKENS]
    sweep["axes"]["workload.scored_tokens"] = [QUICK_SCORED_TOKENS]
    folder = os.path.join(out_dir, ".quick-sweeps")
    os.makedirs(folder, exist_ok=True)
    derived = os.path.join(folder, os.path.basename(path))
    write_atomically(derived, json.dumps(sweep, indent=2) + "\n")
    return derived


def with_fields(config, fields):
    """The config with a point's dotted fields set (as wdmoe-run's --set does)."""
    config = json.loads(json.dumps(config))
    for key, value in fields.items():
        node = config
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return config


def drop_stale_points(path, out_dir):
    """wdmoe-sweep resumes a point whose point.json is unchanged, but the cells' base file (the
    fitted link) may have changed since: a point whose summary.json echoes another config than
    the base with its fields loses its summary.json, so that it runs again. Returns how many."""
    with open(path, encoding="utf-8") as f:
        sweep = json.load(f)
    with open(os.path.join(os.path.dirname(os.path.abspath(path)), sweep["base"]),
              encoding="utf-8") as f:
        base = json.load(f)
    points = os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0], "points")
    stale = 0
    for name in sorted(os.listdir(points)) if os.path.isdir(points) else []:
        summary_path = os.path.join(points, name, "summary.json")
        point_path = os.path.join(points, name, "point.json")
        if not (os.path.isfile(summary_path) and os.path.isfile(point_path)):
            continue
        with open(point_path, encoding="utf-8") as f:
            fields = json.load(f)
        try:
            echo = wdmoe_results.read_json(summary_path).get("config_echo")
        except wdmoe_results.ResultError:
            echo = None
        if echo != with_fields(base, fields):
            os.remove(summary_path)
            stale += 1
    if stale:
        print(f"validate radio: {stale} point(s) were made with another base config; rerunning "
              "them", file=sys.stderr)
    return stale


def run_sweep(bin_dir, path, out_dir, jobs):
    print(f"validate radio: sweep {path}", file=sys.stderr, flush=True)
    p = subprocess.run([os.path.join(bin_dir, "wdmoe-sweep"), os.path.abspath(path),
                        "--jobs", str(jobs)], cwd=sweep_cwd(out_dir))
    if p.returncode != 0:
        raise ValidationError(f"the sweep {path} failed (exit {p.returncode}); its points' "
                              f"run.log say why; rerun to resume")
    return os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0])


def main(argv):
    parser = argparse.ArgumentParser(
        prog="validate_radio.py",
        description="Compares the abstract link with ns-3's LTE on the validation cells.")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="wdmoe-run processes at a time (default: the cores)")
    parser.add_argument("--quick", action="store_true",
                        help="one cell, few tokens: tests the pipeline in seconds")
    parser.add_argument("--bin", default=os.path.join(REPO, "build", "bin"),
                        help="folder of wdmoe-sweep and wdmoe-run (default: build/bin)")
    parser.add_argument("--out", help="results folder (default: results/validation/radio, or "
                                      "results/validation/radio-quick with --quick)")
    parser.add_argument("--sweep", default=os.path.join(REPO, "configs", "validation",
                                                        "radio.json"),
                        help="the cells: a sweep file with a transport axis "
                             "(default: configs/validation/radio.json)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    out_dir = os.path.abspath(args.out or os.path.join(
        "results", "validation", "radio-quick" if args.quick else "radio"))
    try:
        for program in ("wdmoe-sweep", "wdmoe-run"):
            if not os.access(os.path.join(args.bin, program), os.X_OK):
                raise ValidationError(f"{os.path.join(args.bin, program)}: not found (build it: "
                                      "./wdmoe validate radio builds both; or give --bin DIR)")
        os.makedirs(out_dir, exist_ok=True)
        path = quick_sweep(args.sweep, out_dir) if args.quick else args.sweep
        drop_stale_points(path, out_dir)
        sweep = wdmoe_results.Sweep(run_sweep(args.bin, path, out_dir, args.jobs))
        cells = cells_of(sweep)
        rows = comparison_rows(cells)
        lines = table_lines(rows) + [""] + summary_lines(rows)
        print("\n".join(lines))
        write_atomically(os.path.join(out_dir, "comparison.csv"), csv_text(rows))
        title = "# Radio validation: abstract link vs ns-3 LTE" + (" (--quick)" if args.quick
                                                                   else "")
        write_atomically(os.path.join(out_dir, "comparison.md"),
                         "\n".join([title, "", f"Cells: `{args.sweep}`; made by "
                                    "`./wdmoe validate radio` (tools/validate_radio.py). DL/UL: "
                                    "one device's per-layer transfer each way (decode exchanges "
                                    "of transfers.csv); RT = DL + UL; token: decode latency.",
                                    ""] + lines) + "\n")
        print(figure(cells, sweep.points, out_dir))
        print(os.path.join(out_dir, "comparison.md"))
        return 0
    except (ValidationError, ReproduceError, wdmoe_results.ResultError) as e:
        print(f"validate radio: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # an unwritable --out, a full disk
        print(f"validate radio: {e.filename or out_dir}: {e.strerror or e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
