#!/usr/bin/python3
"""Makes every figure a wdmoe result folder supports, from its result files only.

Usage: plot_results.py RESULTS_DIR [--out DIR] [--allow-none]

RESULTS_DIR is a run (summary.json, tokens.csv), a policy comparison (policies.json and a folder
per policy) or a sweep (sweep.csv, points/). PNGs go to DIR (default RESULTS_DIR/figures); the
path of each is printed. A figure the results cannot support is skipped with one line on
stderr. Exit status: 0 when at least one figure was written, 1 when none could be (0 with
--allow-none when the results are readable but support no figure, as a sweep along an axis no
figure uses), 2 on bad arguments.
"""

import argparse
import os
import sys

import figures
import wdmoe_results


def figure_plan(kind, results):
    """(file name, function making the figure) for every figure of this kind of result."""
    if kind == "run":
        runs = [results]
        return [("latency-cdf.png", lambda: figures.latency_cdf(runs)),
                ("experts-per-layer.png", lambda: figures.experts_per_layer(runs)),
                ("prefetch-accuracy.png", lambda: figures.prefetch_accuracy(runs))]
    if kind == "policies":
        runs = results.runs
        return [("latency-cdf.png", lambda: figures.latency_cdf(runs)),
                ("accuracy-vs-latency.png", lambda: figures.accuracy_vs_latency(results)),
                ("energy-vs-latency.png", lambda: figures.energy_vs_latency(results)),
                ("experts-per-layer.png", lambda: figures.experts_per_layer(runs)),
                ("prefetch-accuracy.png", lambda: figures.prefetch_accuracy(runs))]
    return [("latency-vs-devices.png",
             lambda: figures.sweep_latency(results, figures.DEVICES_AXIS, "number of devices")),
            ("latency-vs-bandwidth.png",
             lambda: figures.sweep_latency(results, figures.BANDWIDTH_AXIS,
                                           "total bandwidth (MHz)")),
            ("cache-vs-memory.png", lambda: figures.cache_vs_memory(results)),
            ("experts-perplexity-vs-threshold.png",
             lambda: figures.experts_perplexity_vs_threshold(results)),
            ("serving-vs-load.png", lambda: figures.serving_vs_rate(results))]


def main(argv):
    parser = argparse.ArgumentParser(
        prog="plot_results.py",
        description="PNG figures from a wdmoe result folder (a run, a policy comparison or a "
                    "sweep); never runs a simulation.")
    parser.add_argument("results_dir", metavar="RESULTS_DIR")
    parser.add_argument("--out", metavar="DIR",
                        help="where the PNGs go (default: RESULTS_DIR/figures)")
    parser.add_argument("--allow-none", action="store_true",
                        help="exit 0 when the results support no figure (./wdmoe sweep uses it)")
    args = parser.parse_args(argv)
    try:
        kind, results = wdmoe_results.load(args.results_dir)
    except wdmoe_results.ResultError as e:
        print(f"plot_results: {e}", file=sys.stderr)
        return 1
    out_dir = args.out or os.path.join(args.results_dir, "figures")
    written = 0
    for name, make in figure_plan(kind, results):
        try:
            fig = make()
        except figures.NotPlottable as e:
            print(f"plot_results: {name} not made: {e}", file=sys.stderr)
            # An earlier run's figure of that name no longer shows these results.
            stale = os.path.join(out_dir, name)
            if os.path.isfile(stale):
                os.remove(stale)
            continue
        except wdmoe_results.ResultError as e:
            print(f"plot_results: {e}", file=sys.stderr)
            return 1
        except (KeyError, TypeError, ValueError) as e:
            print(f"plot_results: {args.results_dir}: malformed result files for {name} "
                  f"({type(e).__name__}: {e})", file=sys.stderr)
            return 1
        try:
            os.makedirs(out_dir, exist_ok=True)
            print(figures.save_atomically(fig, out_dir, name))
        except OSError as e:
            print(f"plot_results: {e.filename or out_dir}: cannot write: {e.strerror or e}",
                  file=sys.stderr)
            return 1
        written += 1
    if not written:
        print(f"plot_results: {args.results_dir}: no figure could be made from this {kind}",
              file=sys.stderr)
        return 0 if args.allow_none else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
