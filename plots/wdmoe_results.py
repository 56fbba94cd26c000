"""Finds and loads wdmoe result files; never runs a simulation.

Three kinds of result folder (see src/wdmoe/doc/wdmoe.rst, "Figures"):
  a run:               summary.json, tokens.csv
  a policy comparison: policies.json (policies.csv), one run folder per policy
  a sweep:             sweep.csv, points/NNNN/ (run folders)
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


class PolicyComparison:
    """policies.json and the run folder of every policy, in the table's order."""

    def __init__(self, folder):
        self.folder = folder
        self.table = read_json(os.path.join(folder, "policies.json"))
        if not isinstance(self.table, list) or not self.table:
            raise ResultError(f"{folder}/policies.json: not a non-empty list of policies")
        # Folder names are derived from policy names; each summary names its policy, so match
        # on that rather than re-deriving the folder name.
        by_name = {}
        for entry in sorted(os.listdir(folder)):
            sub = os.path.join(folder, entry)
            if os.path.isfile(os.path.join(sub, "summary.json")):
                run = Run(sub)
                by_name[run.policy_name] = run
        self.runs = []
        for row in self.table:
            if row.get("policy") not in by_name:
                raise ResultError(f"{folder}: no run folder for policy \"{row.get('policy')}\"")
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

    def values(self, axis):
        """The distinct values of an axis, sorted (numbers numerically)."""
        return sorted({axis_value(r[axis]) for r in self.rows}, key=sort_key)


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
