"""Finds and loads wdmoe result files; never runs a simulation.

Three kinds of result folder (see src/wdmoe/doc/wdmoe.rst, "Figures"):
  a run:               summary.json, tokens.csv
  a policy comparison: policies.json (policies.csv), a folder per policy holding run-R/ folders
  a sweep:             sweep.csv (sweep-means.csv), points/NNNN/ (run folders)
"""

import csv
import json
import math
import os

# Sweep axes that replicate a point (averaged over in figures and tables), not vary it.
REPLICATE_AXES = ("run", "seed")


class ResultError(Exception):
    """A result folder that cannot be plotted: missing, malformed or holding nothing known."""


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ResultError(f"{path}: cannot read: {e}") from e


def read_csv(path):
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, csv.Error) as e:
        raise ResultError(f"{path}: cannot read: {e}") from e


def axis_value(text):
    """A sweep axis cell: a number when it reads as one, else the text (a policy name)."""
    try:
        return float(text)
    except ValueError:
        return text


class Run:
    """One scenario run: summary.json and its tokens.csv."""

    def __init__(self, folder):
        self.folder = folder
        self.summary = read_json(os.path.join(folder, "summary.json"))
        for key in ("latency_ms", "per_layer", "policy", "model_routed", "model_priced"):
            if key not in self.summary:
                raise ResultError(f"{folder}/summary.json: no \"{key}\"")

    @property
    def policy_name(self):
        return self.summary["policy"]["name"]

    @property
    def runs(self):
        return 1

    def decode_latencies_ms(self):
        path = os.path.join(self.folder, "tokens.csv")
        rows = read_csv(path)
        try:
            return [float(r["latency_ms"]) for r in rows if r["phase"] == "decode"]
        except (KeyError, ValueError) as e:
            raise ResultError(f"{path}: no numeric latency_ms/phase columns: {e}") from e

    def per_layer(self, key):
        """Layer indices and the values of one per_layer field (NaN where it is null)."""
        layers = self.summary["per_layer"]
        values = [layer.get(key) for layer in layers]
        return ([layer["layer"] for layer in layers],
                [math.nan if v is None else float(v) for v in values])


class RunSet:
    """One policy over several runs (a comparison's run-R/ folders): the first run's summary,
    the decode latencies of every run, per-layer figures averaged over the runs."""

    def __init__(self, runs):
        if not runs:
            raise ResultError("a policy with no runs")
        self.members = runs
        self.folder = runs[0].folder
        self.summary = runs[0].summary

    @property
    def policy_name(self):
        return self.summary["policy"]["name"]

    @property
    def runs(self):
        return len(self.members)

    def decode_latencies_ms(self):
        return [v for run in self.members for v in run.decode_latencies_ms()]

    def per_layer(self, key):
        layers, _ = self.members[0].per_layer(key)
        columns = [run.per_layer(key)[1] for run in self.members]
        means = []
        for values in zip(*columns):
            known = [v for v in values if not math.isnan(v)]
            means.append(sum(known) / len(known) if known else math.nan)
        return layers, means


class PolicyComparison:
    """policies.json and every policy's runs (run-R/ folders), in the table's order."""

    def __init__(self, folder):
        self.folder = folder
        data = read_json(os.path.join(folder, "policies.json"))
        self.table = data.get("policies") if isinstance(data, dict) else None
        if not isinstance(self.table, list) or not self.table:
            raise ResultError(f"{folder}/policies.json: no non-empty \"policies\" list")
        self.baseline = data.get("baseline")
        # Folder names are derived from policy names; each summary names its policy, so match
        # on that rather than re-deriving the folder name.
        by_name = {}
        for entry in sorted(os.listdir(folder)):
            sub = os.path.join(folder, entry)
            if not os.path.isdir(sub):
                continue
            runs = [Run(os.path.join(sub, r)) for r in sorted(os.listdir(sub))
                    if r.startswith("run-") and
                    os.path.isfile(os.path.join(sub, r, "summary.json"))]
            if runs:
                by_name[runs[0].policy_name] = RunSet(runs)
        self.runs = []
        for row in self.table:
            if row.get("policy") not in by_name:
                raise ResultError(f"{folder}: no run folders for policy \"{row.get('policy')}\"")
            self.runs.append(by_name[row["policy"]])


class Sweep:
    """sweep.csv and its points' summaries."""

    def __init__(self, folder):
        self.folder = folder
        path = os.path.join(folder, "sweep.csv")
        self.rows = read_csv(path)
        if not self.rows:
            raise ResultError(f"{path}: no points")
        columns = list(self.rows[0])
        if columns[0] != "point" or "results" not in columns:
            raise ResultError(f"{path}: not a sweep.csv (no point/results columns)")
        self.axes = columns[1:columns.index("results")]
        # The "results" column is relative to where the sweep ran; the point folder beside
        # sweep.csv is where it is now.
        try:
            numbers = [int(r["point"]) for r in self.rows]
        except (TypeError, ValueError) as e:
            raise ResultError(f"{path}: a point column that is not a number: {e}") from e
        self.points = [Run(os.path.join(folder, "points", f"{n:04d}")) for n in numbers]
        # Means over the replicate axes with their intervals (older sweeps have none).
        means_path = os.path.join(folder, "sweep-means.csv")
        self.means = read_csv(means_path) if os.path.isfile(means_path) else []

    def interval(self, row, metric):
        """(low, high) of metric over the replicates of row's point (sweep-means.csv), or None
        when unknown (one run, no sweep-means.csv)."""
        for means in self.means:
            if all(means[a] == row[a] for a in self.axes if a not in REPLICATE_AXES):
                low, high = means.get(f"{metric}_low", ""), means.get(f"{metric}_high", "")
                return (float(low), float(high)) if low != "" and high != "" else None
        return None

    def values(self, axis):
        """The distinct values of an axis, sorted (numbers numerically)."""
        return sorted({axis_value(r[axis]) for r in self.rows}, key=sort_key)


def tpot_knee(xs, p99s):
    """The offered load at which TPOT p99 first reaches twice its value at the lightest load
    (None when it never does within the sweep): the knee of the serving figure and report."""
    for x, y in zip(xs, p99s):
        if y >= 2 * p99s[0]:
            return x
    return None


def sort_key(value):
    return (0, value, "") if isinstance(value, float) else (1, 0, value)


def load(folder):
    """('run' | 'policies' | 'sweep', the loaded results) for a result folder."""
    if not os.path.isdir(folder):
        raise ResultError(f"{folder}: no such folder")
    if os.path.isfile(os.path.join(folder, "sweep.csv")):
        return "sweep", Sweep(folder)
    if os.path.isfile(os.path.join(folder, "policies.json")):
        return "policies", PolicyComparison(folder)
    if os.path.isfile(os.path.join(folder, "summary.json")):
        return "run", Run(folder)
    raise ResultError(f"{folder}: nothing to plot (no summary.json, policies.json or sweep.csv; "
                      "give a run, a policy comparison or a sweep result folder)")
