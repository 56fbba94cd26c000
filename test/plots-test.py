#!/usr/bin/python3
"""The figures (plots/) on the committed result set test/data/plot-results/ (made by its make.sh
with the real programs).

Usage: plots-test.py CHECK REPO_ROOT, CHECK one of
  figures            every expected PNG of each result kind: a valid PNG of the figure size
  no-simulation      the scripts run nothing: fake wdmoe/ns-3 programs on PATH and beside a copy
                     of plots/ stay unused, and no script imports a way to start a program
  nothing-plottable  a folder without results exits 1 with a message and writes nothing
"""

import ast
import csv
import os
import shutil
import subprocess
import sys

import checks as checks_lib
from checks import check, png_size

# What plot_results.py makes from each committed result folder.
EXPECTED = {
    "run": ["latency-cdf.png", "experts-per-layer.png", "prefetch-accuracy.png"],
    "policies": ["latency-cdf.png", "accuracy-vs-latency.png", "energy-vs-latency.png",
                 "experts-per-layer.png", "prefetch-accuracy.png"],
    "sweep": ["latency-vs-devices.png", "latency-vs-bandwidth.png"],
    "memory-sweep": ["cache-vs-memory.png"],
    "threshold-sweep": ["experts-perplexity-vs-threshold.png"],
    "serving-sweep": ["serving-vs-load.png"],
}
# ... and the figures it skips there, one stderr line each (the sweep lacks their axis).
NOT_MADE = {
    "run": [],
    "policies": [],
    "sweep": ["cache-vs-memory.png", "experts-perplexity-vs-threshold.png",
              "serving-vs-load.png"],
    "memory-sweep": ["latency-vs-devices.png", "latency-vs-bandwidth.png",
                     "experts-perplexity-vs-threshold.png", "serving-vs-load.png"],
    "threshold-sweep": ["latency-vs-devices.png", "latency-vs-bandwidth.png",
                        "cache-vs-memory.png", "serving-vs-load.png"],
    "serving-sweep": ["latency-vs-devices.png", "latency-vs-bandwidth.png",
                      "cache-vs-memory.png", "experts-perplexity-vs-threshold.png"],
}
FIGURE_PX = (1000, 640)  # plots/figures.py: FIGURE_SIZE_IN x FIGURE_DPI
MIN_PNG_BYTES = 10_000  # a figure with axes, lines and text; an empty canvas is far smaller

# Programs a plotting script must never start (the simulators and the driver).
FAKE_PROGRAMS = ["wdmoe", "wdmoe-run", "wdmoe-sweep", "wdmoe-llm", "ns3"]
# Modules and os functions that start programs.
FORBIDDEN_MODULES = {"subprocess", "multiprocessing", "pty", "concurrent"}
FORBIDDEN_OS_PREFIXES = ("system", "popen", "exec", "spawn", "posix_spawn", "fork", "startfile")

def plot(root, args, env=None):
    """Runs plots/plot_results.py under root; returns (exit status, stdout, stderr)."""
    child_env = dict(env if env is not None else os.environ, PYTHONDONTWRITEBYTECODE="1")
    p = subprocess.run([sys.executable, os.path.join(root, "plots", "plot_results.py")] + args,
                       capture_output=True, text=True, env=child_env)
    return p.returncode, p.stdout, p.stderr


def copy_data(root, tmp):
    """A copy of the committed result set (the default output folder is inside it)."""
    data = os.path.join(tmp, "plot-results")
    shutil.copytree(os.path.join(root, "test", "data", "plot-results"), data, symlinks=True)
    return data


def check_figures(root, tmp):
    data = copy_data(root, tmp)
    for kind, names in EXPECTED.items():
        out = os.path.join(tmp, "out", kind)
        status, stdout, stderr = plot(root, [os.path.join(data, kind), "--out", out])
        check(f"{kind}: exits 0 ({stderr.strip()[:300]})", status == 0)
        expected_paths = [os.path.join(out, n) for n in names]
        check(f"{kind}: prints the paths written", stdout.split() == expected_paths)
        check(f"{kind}: writes exactly {', '.join(names)}",
              os.path.isdir(out) and sorted(os.listdir(out)) == sorted(names))
        for path in expected_paths:
            name = os.path.basename(path)
            exists = os.path.isfile(path)
            check(f"{kind}/{name}: a PNG of {FIGURE_PX[0]} x {FIGURE_PX[1]} px",
                  exists and png_size(path) == FIGURE_PX)
            check(f"{kind}/{name}: at least {MIN_PNG_BYTES} bytes",
                  exists and os.path.getsize(path) >= MIN_PNG_BYTES)
        skipped = [line.split()[1] for line in stderr.splitlines() if " not made: " in line]
        check(f"{kind}: one stderr line for each figure not made ({', '.join(skipped) or 'none'})",
              skipped == NOT_MADE[kind])
    # Without --out the figures go to RESULTS_DIR/figures.
    status, stdout, _ = plot(root, [os.path.join(data, "run")])
    default = os.path.join(data, "run", "figures")
    check("without --out: RESULTS_DIR/figures", status == 0 and
          sorted(os.listdir(default)) == sorted(EXPECTED["run"]))

    # A figure an earlier plot made that these results no longer support is removed.
    stale = os.path.join(data, "sweep", "figures", "cache-vs-memory.png")
    os.makedirs(os.path.dirname(stale), exist_ok=True)
    with open(stale, "wb") as f:
        f.write(b"an old figure")
    status, _, _ = plot(root, [os.path.join(data, "sweep")])
    check("a stale figure of a name not made now is removed", status == 0
          and not os.path.exists(stale))

    check_figure_data(root, os.path.join(tmp, "data-check"))


def sweep_means(folder, metric, where):
    """Mean of a sweep.csv column over the rows matching where {column: text}, read here with
    the csv module alone (not through plots/)."""
    with open(os.path.join(folder, "sweep.csv"), newline="") as f:
        values = [float(r[metric]) for r in csv.DictReader(f)
                  if all(float(r[k]) == float(v) if k != "policy" else r[k] == v
                         for k, v in where.items())]
    return sum(values) / len(values) if values else None


def data_lines(ax):
    """(label, line) of every plotted line of a panel: plain lines, and the data line of each
    error bar container (matplotlib labels the container, not its lines)."""
    lines = [(line.get_label(), line) for line in ax.lines
             if not line.get_label().startswith("_")]
    return lines + [(c.get_label(), c.lines[0]) for c in ax.containers if hasattr(c, "lines")]


def error_bars(ax):
    """(x, low, high) of every error bar of a panel: the vertical segments errorbar draws."""
    from matplotlib.collections import LineCollection
    bars = []
    for collection in ax.collections:
        if isinstance(collection, LineCollection):
            for segment in collection.get_segments():
                (x0, y0), (x1, y1) = segment[0], segment[-1]
                bars.append((x0, min(y0, y1), max(y0, y1)))
    return bars


def means_intervals(folder, metric):
    """{(policy, devices, bandwidth): (low, high)} from sweep-means.csv, read with csv alone."""
    with open(os.path.join(folder, "sweep-means.csv"), newline="") as f:
        return {(r["policy"], float(r["devices.count"]), float(r["cell.bandwidth_mhz"])):
                (float(r[f"{metric}_low"]), float(r[f"{metric}_high"]))
                for r in csv.DictReader(f)}


def check_figure_data(root, tmp):
    """The sweep figures plot the sweep.csv means: each line's points, per panel."""
    sys.path.insert(0, os.path.join(root, "plots"))
    import figures  # noqa: E402
    import wdmoe_results  # noqa: E402
    data = copy_data(root, tmp)
    _, sweep = wdmoe_results.load(os.path.join(data, "sweep"))
    fig = figures.sweep_latency(sweep, figures.DEVICES_AXIS, "number of devices")
    panels = [ax for ax in fig.axes if ax.lines]
    check("latency-vs-devices: one panel per bandwidth", sorted(ax.get_title() for ax in panels)
          == ["cell.bandwidth_mhz = 100", "cell.bandwidth_mhz = 20"])
    compared, wrong = 0, []
    for ax in panels:
        bandwidth = ax.get_title().split(" = ")[1]
        for label, line in data_lines(ax):
            for x, y in zip(line.get_xdata(), line.get_ydata()):
                want = sweep_means(os.path.join(data, "sweep"), "latency_mean_ms",
                                   {"policy": label, "devices.count": x,
                                    "cell.bandwidth_mhz": bandwidth})
                compared += 1
                if want is None or abs(y - want) > 1e-9 * abs(want):
                    wrong.append(f"{label} at {x}, {bandwidth} MHz: {y} vs {want}")
    check(f"latency-vs-devices: {compared} points are the sweep.csv latencies "
          f"({'; '.join(wrong) or 'all'})", compared == 8 and not wrong)
    # Each point's error bar spans sweep-means.csv's 95 % interval over the runs.
    intervals = means_intervals(os.path.join(data, "sweep"), "latency_mean_ms")
    bars, wrong = 0, []
    for ax in panels:
        bandwidth = float(ax.get_title().split(" = ")[1])
        for x, low, high in error_bars(ax):
            bars += 1
            matches = [ci for (p, d, b), ci in intervals.items() if d == x and b == bandwidth
                       and abs(ci[0] - low) <= 1e-6 * abs(low) + 1e-9
                       and abs(ci[1] - high) <= 1e-6 * abs(high) + 1e-9]
            if not matches:
                wrong.append(f"bar at {x}, {bandwidth} MHz: [{low}, {high}]")
    check(f"latency-vs-devices: {bars} error bars are sweep-means.csv's intervals "
          f"({'; '.join(wrong) or 'all'})", bars == 8 and not wrong)
    _, memory = wdmoe_results.load(os.path.join(data, "memory-sweep"))
    fig = figures.cache_vs_memory(memory)
    compared, wrong = 0, []
    for ax, metric in zip(fig.axes, ("cache_hit_rate", "latency_mean_ms")):
        for label, line in data_lines(ax):
            for x, y in zip(line.get_xdata(), line.get_ydata()):
                want = sweep_means(os.path.join(data, "memory-sweep"), metric,
                                   {"policy": label, "devices.memory_fraction": x})
                compared += 1
                if want is None or abs(y - want) > 1e-9 * abs(want):
                    wrong.append(f"{metric} of {label} at {x}: {y} vs {want}")
    check(f"cache-vs-memory: {compared} points are sweep.csv means over the runs "
          f"({'; '.join(wrong) or 'all'})", compared == 8 and not wrong)
    check_serving_figure_data(figures, wdmoe_results, data)
    figures.plt.close("all")


def check_serving_figure_data(figures, wdmoe_results, data):
    """serving-vs-load plots sweep.csv's TTFT and TPOT percentiles in seconds, and its knee is
    the first load whose TPOT p99 is twice that of the lightest load (worked out here)."""
    folder = os.path.join(data, "serving-sweep")
    _, sweep = wdmoe_results.load(folder)
    fig = figures.serving_vs_rate(sweep)
    rate = "workload.requests.rate_per_s"
    compared, wrong, knees = 0, [], {}
    for ax, metric in zip(fig.axes, ("ttft", "tpot")):
        for label, line in data_lines(ax):
            policy, what = label.rsplit(": ", 1)
            if what.startswith("knee"):
                knees[policy] = line.get_xdata()[0]
                continue
            for x, y in zip(line.get_xdata(), line.get_ydata()):
                want = sweep_means(folder, f"{metric}_{what}_ms", {"policy": policy, rate: x})
                compared += 1
                if want is None or abs(y - want / 1e3) > 1e-9 * abs(want):
                    wrong.append(f"{metric} {what} of {policy} at {x}: {y} vs {want}")
    check(f"serving-vs-load: {compared} points are sweep.csv's percentiles "
          f"({'; '.join(wrong) or 'all'})", compared == 24 and not wrong)
    with open(os.path.join(folder, "sweep.csv"), newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: float(r[rate]))
    expected = {}
    for policy in {r["policy"] for r in rows}:
        p99 = [(float(r[rate]), float(r["tpot_p99_ms"])) for r in rows if r["policy"] == policy]
        expected[policy] = next((x for x, y in p99 if y >= 2 * p99[0][1]), None)
    check(f"serving-vs-load: the knees are where TPOT p99 doubles ({knees} vs {expected})",
          knees == {p: x for p, x in expected.items() if x is not None} and knees)


def check_no_simulation(root, tmp):
    marker = os.path.join(tmp, "a-program-ran")
    fake = f"#!/bin/sh\necho \"$0 $*\" >>{marker}\nexit 0\n"
    # The scripts run from a copy of plots/ whose repository holds only fakes: no real driver,
    # no real build/ to find beside it.
    repo = os.path.join(tmp, "repo")
    shutil.copytree(os.path.join(root, "plots"), os.path.join(repo, "plots"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    fake_bin = os.path.join(tmp, "fake-bin")
    for folder, names in ((fake_bin, FAKE_PROGRAMS), (os.path.join(repo, "build", "bin"),
                                                      FAKE_PROGRAMS[1:]), (repo, ["wdmoe"])):
        os.makedirs(folder, exist_ok=True)
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "w") as f:
                f.write(fake)
            os.chmod(path, 0o755)
    data = copy_data(root, tmp)
    env = {"PATH": fake_bin, "HOME": os.environ.get("HOME", tmp), "LANG": "C.UTF-8"}
    for kind in EXPECTED:
        status, _, stderr = plot(repo, [os.path.join(data, kind), "--out",
                                        os.path.join(tmp, "out", kind)], env)
        check(f"{kind}: plots with only fake programs on PATH ({stderr.strip()[:300]})",
              status == 0)
    check("no wdmoe, wdmoe-run, wdmoe-sweep, wdmoe-llm or ns3 was started",
          not os.path.exists(marker))

    scripts = sorted(n for n in os.listdir(os.path.join(root, "plots")) if n.endswith(".py"))
    check("plots/ has python scripts", bool(scripts))
    for name in scripts:
        with open(os.path.join(root, "plots", name), encoding="utf-8") as f:
            tree = ast.parse(f.read(), name)
        starts = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                starts += [a.name for a in node.names
                           if a.name.split(".")[0] in FORBIDDEN_MODULES]
            elif isinstance(node, ast.ImportFrom):
                module = (node.module or "").split(".")[0]
                if module in FORBIDDEN_MODULES:
                    starts.append(node.module)
                elif module == "os":
                    starts += [f"os.{a.name}" for a in node.names
                               if a.name.startswith(FORBIDDEN_OS_PREFIXES)]
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                  and node.value.id == "os" and node.attr.startswith(FORBIDDEN_OS_PREFIXES)):
                starts.append(f"os.{node.attr}")
        check(f"plots/{name} uses no way to start a program ({', '.join(starts) or 'none'})",
              not starts)


def check_nothing_plottable(root, tmp):
    empty = os.path.join(tmp, "empty")
    os.makedirs(empty)
    junk = os.path.join(tmp, "junk")
    os.makedirs(junk)
    with open(os.path.join(junk, "notes.txt"), "w") as f:
        f.write("not a result file\n")
    for what, folder, files in (("an empty folder", empty, []),
                                ("a folder of other files", junk, ["notes.txt"])):
        status, stdout, stderr = plot(root, [folder])
        check(f"{what}: exits 1", status == 1)
        check(f"{what}: says there is nothing to plot", "nothing to plot" in stderr)
        check(f"{what}: writes nothing", not stdout and os.listdir(folder) == files)
    # A malformed sweep.csv: a message naming the file, not a traceback.
    broken = os.path.join(copy_data(root, os.path.join(tmp, "broken")), "sweep")
    with open(os.path.join(broken, "sweep.csv")) as f:
        text = f.read()
    with open(os.path.join(broken, "sweep.csv"), "w") as f:
        f.write(text.replace("\n0,", "\nzero,", 1))
    status, _, stderr = plot(root, [broken])
    check("a sweep.csv with a bad point number: exits 1 naming the file, no traceback",
          status == 1 and "sweep.csv" in stderr and "Traceback" not in stderr)
    status, _, stderr = plot(root, [os.path.join(tmp, "missing")])
    check("a missing folder: exits 1 and names it", status == 1 and "no such folder" in stderr)

    # A sweep along an axis no figure uses (only the run): every figure is skipped.
    data = copy_data(root, tmp)
    sweep = os.path.join(data, "memory-sweep")
    with open(os.path.join(sweep, "sweep.csv")) as f:
        lines = f.read().splitlines()
    with open(os.path.join(sweep, "sweep.csv"), "w") as f:
        for line in lines:  # point,devices.memory_fraction,policy,run,... -> point,run,...
            cells = line.split(",")
            f.write(",".join(cells[:1] + cells[3:]) + "\n")
    status, _, stderr = plot(root, [sweep])
    check("a sweep with no plottable axis: exits 1", status == 1)
    check("... says no figure could be made", "no figure could be made" in stderr)
    check("... writes no figures folder", not os.path.exists(os.path.join(sweep, "figures")))
    status, _, stderr = plot(root, [sweep, "--allow-none"])
    check("... exits 0 with --allow-none, still saying so",
          status == 0 and "no figure could be made" in stderr)
    status, _, _ = plot(root, [empty, "--allow-none"])
    check("an empty folder exits 1 even with --allow-none (nothing readable)", status == 1)


def main():
    checks = {"figures": check_figures, "no-simulation": check_no_simulation,
              "nothing-plottable": check_nothing_plottable}
    return checks_lib.main(checks, __doc__, path_args=1)


if __name__ == "__main__":
    sys.exit(main())
