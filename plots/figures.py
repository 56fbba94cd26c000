"""One function per figure. Each takes loaded results (wdmoe_results) and returns a matplotlib
Figure, or raises NotPlottable when the results lack what the figure needs."""

import itertools
import math
import os

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402 (after the backend is chosen)

from wdmoe_results import REPLICATE_AXES, axis_value, sort_key, tpot_knee  # noqa: E402

# Every figure has the same pixel size, whatever its panels (the tests check it).
FIGURE_SIZE_IN = (10.0, 6.4)
FIGURE_DPI = 100
CAPTION_HEIGHT = 0.05  # share of the figure's height kept for the caption below the panels
MAX_PANELS = 4

DEVICES_AXIS = "devices.count"
BANDWIDTH_AXIS = "cell.bandwidth_mhz"
MEMORY_AXIS = "devices.memory_fraction"
THRESHOLD_AXIS = "policy.adaptive_threshold"
RATE_AXIS = "workload.requests.rate_per_s"


class NotPlottable(Exception):
    """The results do not hold what a figure needs (the message says what)."""


# --- common -------------------------------------------------------------------------------------

def model_caption(runs):
    """The routed and the priced model of the runs (one line per distinct pair)."""
    lines = []
    for run in runs:
        r, p = run.summary["model_routed"], run.summary["model_priced"]
        line = (f"routed by {os.path.basename(os.path.normpath(r['dir']))} "
                f"({r['layers']} layers x {r['experts']} experts, top-{r['top_k']}, "
                f"d_model {r['d_model']}, {r['dtype']});\n"
                f"costs priced as {p['name']} ({p['layers']} layers x {p['experts']} experts, "
                f"top-{p['top_k']}, d_model {p['d_model']}, "
                f"{p['expert_bytes'] / 1e6:.0f} MB per expert); "
                f"{coverage(run.summary)}")
        if line not in lines:
            lines.append(line)
    return "\n".join(lines)


def coverage(summary):
    """'latency covers N of M layers' (older results: worked out from the two models)."""
    if "latency_covers" in summary:
        return summary["latency_covers"]
    return (f"latency covers {summary['model_routed']['layers']} of "
            f"{summary['model_priced']['layers']} layers")


def new_figure(title, runs, panels=1):
    """A figure with `panels` axes (up to 2 x 2), the title on top and the model caption below."""
    rows, cols = (2, 2) if panels == 4 else (1, panels)
    fig, axes = plt.subplots(rows, cols, figsize=FIGURE_SIZE_IN, dpi=FIGURE_DPI,
                             layout="constrained", squeeze=False)
    caption = model_caption(runs)
    height = CAPTION_HEIGHT * (caption.count("\n") + 1)
    fig.get_layout_engine().set(rect=(0, height, 1, 1 - height))
    fig.suptitle(title)
    fig.text(0.5, 0.01, caption, ha="center", va="bottom", fontsize=8)
    return fig, list(axes.flat)


def save_atomically(fig, out_dir, name):
    """Writes the figure as out_dir/name (PNG) via a temporary file and a rename, so a reader
    never sees half a file; returns the path."""
    path = os.path.join(out_dir, name)
    temp = os.path.join(out_dir, f".{name}.{os.getpid()}.tmp")
    try:
        fig.savefig(temp, format="png", dpi=FIGURE_DPI)
        os.replace(temp, path)
    finally:
        plt.close(fig)
        if os.path.exists(temp):
            os.remove(temp)
    return path


def outside_legend(ax, title=None):
    # Policy names are long: keep the legend right of the data.
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small", title=title,
              title_fontsize="small")


# --- single runs and policy comparisons ---------------------------------------------------------

def latency_cdf(runs):
    """Per-token decode latency CDF, one curve per run (policy)."""
    fig, (ax,) = new_figure("Per-token latency CDF (decode tokens)", runs)
    for run in runs:
        latencies = sorted(run.decode_latencies_ms())
        if not latencies:
            continue
        n = len(latencies)
        runs_text = f", {run.runs} runs" if run.runs > 1 else ""
        ax.step(latencies, [(i + 1) / n for i in range(n)], where="post",
                label=f"{run.policy_name} ({n} tokens{runs_text})")
    if not ax.lines:
        plt.close(fig)
        raise NotPlottable("no decode rows in tokens.csv")
    ax.set_xlabel("decode token latency (ms)")
    ax.set_ylabel("fraction of decode tokens")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    outside_legend(ax)
    return fig


def _ci(value):
    """(mean, low, high) of a policies.json interval object; low/high None when unknown."""
    low, high = value["ci"]
    return value["mean"], low, high


def accuracy_vs_latency(comparison):
    """Perplexity against mean decode latency, one point per policy (policies.json), with the
    95 % intervals: latency across runs, perplexity from the paired bootstrap against the
    baseline."""
    fig, (ax,) = new_figure("Accuracy vs latency, one point per policy (95 % intervals)",
                            comparison.runs)
    markers = itertools.cycle("o s ^ v D P X * h <".split())
    base = next((r for r in comparison.table if r["policy"] == comparison.baseline),
                comparison.table[0])
    for row in comparison.table:
        x, x_low, x_high = _ci(row["latency_mean_ms"])
        _, p_low, p_high = _ci(row["perplexity_change_pct"])
        y = row["perplexity"]
        xerr = [[x - x_low], [x_high - x]] if x_low is not None else None
        yerr = None
        if p_low is not None and row is not base:
            # The paired interval of the change, around the baseline's perplexity.
            y_low = base["perplexity"] * (1 + p_low / 100)
            y_high = base["perplexity"] * (1 + p_high / 100)
            yerr = [[max(0.0, y - y_low)], [max(0.0, y_high - y)]]
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, linestyle="none", marker=next(markers),
                    markersize=8, capsize=3, label=row["policy"])
    ax.set_xlabel(f"mean decode token latency (ms), mean over {comparison.runs[0].runs} runs")
    ax.set_ylabel("perplexity (lower is better)")
    ax.grid(alpha=0.3)
    outside_legend(ax)
    return fig


def energy_vs_latency(comparison):
    """Device energy per output token against mean decode latency, one point per policy
    (policies.json and each policy's summary.json "energy"): latency with its 95 % interval
    across runs, energy as the mean over runs with the range of the runs."""
    if not all("energy" in run.summary for rs in comparison.runs for run in rs.members):
        raise NotPlottable("the runs have no energy (energy.enabled is off)")
    fig, (ax,) = new_figure("Device energy per output token vs latency, one point per policy",
                            comparison.runs)
    markers = itertools.cycle("o s ^ v D P X * h <".split())
    by_name = {rs.policy_name: rs for rs in comparison.runs}
    for row in comparison.table:
        x, x_low, x_high = _ci(row["latency_mean_ms"])
        joules = [run.summary["energy"]["per_output_token_j"]
                  for run in by_name[row["policy"]].members]
        y = sum(joules) / len(joules)
        xerr = [[x - x_low], [x_high - x]] if x_low is not None else None
        yerr = [[y - min(joules)], [max(joules) - y]]
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, linestyle="none", marker=next(markers),
                    markersize=8, capsize=3, label=row["policy"])
    ax.set_xlabel(f"mean decode token latency (ms), mean over {comparison.runs[0].runs} runs")
    ax.set_ylabel("device energy per output token (J), all devices; bars: range over runs")
    ax.grid(alpha=0.3)
    outside_legend(ax)
    return fig


def experts_per_layer(runs):
    """Mean activated experts per decode token in each layer, one line per run (policy)."""
    fig, (ax,) = new_figure("Activated experts per layer (decode tokens)", runs)
    for run in runs:
        layers, values = run.per_layer("experts_per_token")
        # Adaptive gating and WLR/straggler selection both run fewer experts: say which.
        policy = run.summary["policy"]
        ax.plot(layers, values, marker="o",
                label=f"{run.policy_name} [{policy['gating']}/{policy['selection']}]")
    top_k = runs[0].summary["model_routed"]["top_k"]
    ax.axhline(top_k, color="grey", linestyle=":", label=f"top-{top_k} (no gating change)")
    ax.set_xticks(layers)
    ax.set_xlabel("MoE layer of the routed model")
    ax.set_ylabel("activated experts per decode token")
    ax.set_ylim(0, top_k + 0.25)
    ax.grid(alpha=0.3)
    outside_legend(ax, title="policy [gating/selection]")
    return fig


def prefetch_accuracy(runs):
    """Next-layer prefetch accuracy per layer, one line per run that prefetches."""
    prefetching = [r for r in runs
                   if any(not math.isnan(v) for v in r.per_layer("prefetch_accuracy")[1])]
    if not prefetching:
        raise NotPlottable("no run prefetches (per_layer prefetch_accuracy is null everywhere)")
    fig, (ax,) = new_figure("Prefetch accuracy per layer (share of experts predicted a layer "
                            "ahead)", prefetching)
    for run in prefetching:
        layers, values = run.per_layer("prefetch_accuracy")
        ax.plot(layers, values, marker="o", label=run.policy_name)
    ax.set_xticks(layers)
    ax.set_xlabel("MoE layer of the routed model (layer 0 has no earlier layer to predict it)")
    ax.set_ylabel("prefetch accuracy (fraction)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    outside_legend(ax)
    return fig


# --- sweeps -------------------------------------------------------------------------------------

def _is_policy_axis(axis):
    return axis == "policy" or axis.startswith("policy.")


def _line_label(sweep, row, x_axis=None):
    """A row's line: its policy, plus the value of any policy.* axis (which may not rename it)
    other than the x axis."""
    extra = [f"{a}={row[a]}" for a in sweep.axes if a.startswith("policy.") and a != x_axis]
    return " ".join([row["policy_name"]] + extra)


def _format(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def _split_other_axes(sweep, x_axis, panels_allowed):
    """The panels for a figure along x_axis: a list of (panel title, {axis: value}) and a note
    for the figure title. Other varying axes get a panel per value combination when at most
    MAX_PANELS, else are fixed at their largest value; replicate axes are averaged over."""
    others = [a for a in sweep.axes if a != x_axis and not _is_policy_axis(a)
              and a not in REPLICATE_AXES and len(sweep.values(a)) > 1]
    notes = []
    combos = list(itertools.product(*(sweep.values(a) for a in others)))
    if others and panels_allowed and len(combos) <= MAX_PANELS:
        panels = [(", ".join(f"{a} = {_format(v)}" for a, v in zip(others, c)), dict(zip(others, c)))
                  for c in combos]
        notes.append("one panel per " + " x ".join(others))
    else:
        fixed = {a: sweep.values(a)[-1] for a in others}
        panels = [("", fixed)]
        if fixed:
            notes.append(", ".join(f"{a} fixed at {_format(v)}" for a, v in fixed.items()))
    for a in sweep.axes:
        if a in REPLICATE_AXES and len(sweep.values(a)) > 1:
            notes.append(f"mean over {len(sweep.values(a))} values of {a}; error bars: 95 % "
                         "intervals across them")
    return panels, ("; ".join(notes))


def _lines(sweep, x_axis, where, metric):
    """{line label: ([x], [mean of metric over the rows at x], [(low, high) or None])} for the
    rows matching `where`; the intervals come from sweep-means.csv (over the replicate axes)."""
    groups = {}
    first = {}
    for row in sweep.rows:
        if all(axis_value(row[a]) == v for a, v in where.items()) and row[metric] != "":
            key = (_line_label(sweep, row, x_axis), axis_value(row[x_axis]))
            groups.setdefault(key, []).append(float(row[metric]))
            first.setdefault(key, row)
    lines = {}
    for (label, x), values in sorted(groups.items(), key=lambda kv: sort_key(kv[0][1])):
        xs, ys, cis = lines.setdefault(label, ([], [], []))
        xs.append(x)
        ys.append(sum(values) / len(values))
        cis.append(sweep.interval(first[(label, x)], metric) if len(values) > 1 else None)
    return lines


def _plot_line(ax, xs, ys, cis, **style):
    """A line with error bars where the points have intervals; returns the line."""
    if any(ci is not None for ci in cis):
        lows = [y - ci[0] if ci else 0.0 for y, ci in zip(ys, cis)]
        highs = [ci[1] - y if ci else 0.0 for y, ci in zip(ys, cis)]
        container = ax.errorbar(xs, ys, yerr=[lows, highs], capsize=3, **style)
        return container.lines[0]
    (line,) = ax.plot(xs, ys, **style)
    return line


def _require_axis(sweep, axis):
    if axis not in sweep.axes:
        raise NotPlottable(f"the sweep has no {axis} axis (its axes: {', '.join(sweep.axes)})")


def _title(text, note):
    return f"{text}\n({note})" if note else text


def sweep_latency(sweep, x_axis, x_label):
    """Mean decode token latency along one sweep axis, one line per policy."""
    _require_axis(sweep, x_axis)
    panels, note = _split_other_axes(sweep, x_axis, panels_allowed=True)
    fig, axes = new_figure(_title(f"Mean decode token latency vs {x_axis}", note),
                           sweep.points, len(panels))
    for ax, (panel_title, where) in zip(axes, panels):
        for label, (xs, ys, cis) in _lines(sweep, x_axis, where, "latency_mean_ms").items():
            _plot_line(ax, xs, ys, cis, marker="o", label=label)
        ax.set_title(panel_title, fontsize="medium")
        ax.set_xticks(sweep.values(x_axis))
        ax.set_xlabel(x_label)
        ax.set_ylabel("mean decode token latency (ms)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize="small")
    return fig


def cache_vs_memory(sweep):
    """Cache hit rate and mean latency against device memory, one line per policy (so with and
    without prefetch when the policy axis has both)."""
    _require_axis(sweep, MEMORY_AXIS)
    panels, note = _split_other_axes(sweep, MEMORY_AXIS, panels_allowed=False)
    where = panels[0][1]
    fig, (hit_ax, latency_ax) = new_figure(
        _title(f"Cache hit rate and latency vs device memory ({MEMORY_AXIS})", note),
        sweep.points, 2)
    # Tick labels give the expert memory slots per device each fraction buys.
    slots = {}
    for row, point in zip(sweep.rows, sweep.points):
        slots.setdefault(axis_value(row[MEMORY_AXIS]), set()).add(
            point.summary["cell"]["expert_memory_slots_per_device"])
    fractions = sweep.values(MEMORY_AXIS)
    ticks = [f"{_format(f)}\n{'/'.join(str(s) for s in sorted(slots[f]))} slots" for f in fractions]
    for ax, metric, y_label in ((hit_ax, "cache_hit_rate", "expert cache hit rate (decode)"),
                                (latency_ax, "latency_mean_ms", "mean decode token latency (ms)")):
        for label, (xs, ys, cis) in _lines(sweep, MEMORY_AXIS, where, metric).items():
            _plot_line(ax, xs, ys, cis, marker="o", label=label)
        ax.set_xticks(fractions, ticks)
        ax.set_xlabel("device memory share for experts (expert slots per device)")
        ax.set_ylabel(y_label)
        ax.grid(alpha=0.3)
    hit_ax.set_ylim(0, 1.02)
    latency_ax.set_ylim(bottom=0)
    latency_ax.legend(fontsize="small")
    return fig


def experts_perplexity_vs_threshold(sweep):
    """Activated experts per decode token-layer (and the share of single-expert decisions) and
    perplexity against AdapMoE's gating threshold T, one line per policy."""
    _require_axis(sweep, THRESHOLD_AXIS)
    panels, note = _split_other_axes(sweep, THRESHOLD_AXIS, panels_allowed=False)
    where = panels[0][1]
    fig, (experts_ax, ppl_ax) = new_figure(
        _title(f"Activated experts and perplexity vs the adaptive gating threshold T "
               f"({THRESHOLD_AXIS})", note), sweep.points, 2)
    thresholds = sweep.values(THRESHOLD_AXIS)
    # T = 0 is top-k and the values span decades: linear up to the smallest positive T, then
    # logarithmic.
    positive = [t for t in thresholds if t > 0]
    for ax in (experts_ax, ppl_ax):
        if positive:
            ax.set_xscale("symlog", linthresh=min(positive), linscale=0.5)
        ax.set_xticks(thresholds, [_format(t) for t in thresholds], rotation=45)
        ax.minorticks_off()
        ax.set_xlabel("adaptive gating threshold T")
        ax.grid(alpha=0.3)
    # The single-expert share is in the points' summaries (single_expert_rate), not sweep.csv.
    single = {}
    for row, point in zip(sweep.rows, sweep.points):
        if all(axis_value(row[a]) == v for a, v in where.items()):
            rate = point.summary.get("single_expert_rate")
            if rate is not None:
                key = (_line_label(sweep, row, THRESHOLD_AXIS), axis_value(row[THRESHOLD_AXIS]))
                single.setdefault(key, []).append(float(rate))
    top_k = sweep.points[0].summary["model_routed"]["top_k"]
    for label, (xs, ys, cis) in _lines(sweep, THRESHOLD_AXIS, where,
                                       "experts_per_token_layer").items():
        line = _plot_line(experts_ax, xs, ys, cis, marker="o", label=f"{label}: experts")
        shares = [single.get((label, x)) for x in xs]
        if all(shares):
            experts_ax.plot(xs, [sum(s) / len(s) for s in shares], marker="s", linestyle="--",
                            color=line.get_color(), label=f"{label}: single-expert share")
    experts_ax.axhline(top_k, color="grey", linestyle=":", label=f"top-{top_k}")
    experts_ax.set_ylabel("experts per decode token-layer; share of single-expert decisions")
    experts_ax.set_ylim(0, top_k + 0.25)
    experts_ax.legend(fontsize="small")
    for label, (xs, ys, cis) in _lines(sweep, THRESHOLD_AXIS, where, "perplexity").items():
        _plot_line(ppl_ax, xs, ys, cis, marker="o", label=label)
    ppl_ax.set_ylabel("perplexity of the scored text (lower is better)")
    ppl_ax.legend(fontsize="small")
    return fig


def serving_vs_rate(sweep):
    """TTFT and TPOT, p50 (solid) and p99 (dashed), against the offered load in requests per
    second, one colour per policy; a dotted line marks each policy's knee (TPOT p99 twice its
    value at the lightest load)."""
    _require_axis(sweep, RATE_AXIS)
    if "ttft_p50_ms" not in sweep.rows[0]:
        raise NotPlottable("sweep.csv has no serving columns (its points serve no requests)")
    panels, note = _split_other_axes(sweep, RATE_AXIS, panels_allowed=False)
    # Percentiles over replicates are plain means: sweep-means.csv has no intervals for them.
    note = note.replace("; error bars: 95 % intervals across them", "")
    where = panels[0][1]
    fig, (ttft_ax, tpot_ax) = new_figure(
        _title("Time to first token and time per output token vs offered load", note),
        sweep.points, 2)
    colours = {}
    for ax, name in ((ttft_ax, "ttft"), (tpot_ax, "tpot")):
        for quantile, style in (("p50", "-"), ("p99", "--")):
            for label, (xs, ys, _) in _lines(sweep, RATE_AXIS, where,
                                              f"{name}_{quantile}_ms").items():
                line = _plot_line(ax, xs, [y / 1e3 for y in ys], [None] * len(xs), marker="o",
                                  linestyle=style, color=colours.get(label),
                                  label=f"{label}: {quantile}")
                colours.setdefault(label, line.get_color())
                knee = tpot_knee(xs, ys) if (name, quantile) == ("tpot", "p99") else None
                if knee is not None:
                    ax.axvline(knee, color=colours[label], linestyle=":",
                               label=f"{label}: knee {knee:g}/s")
        rates = sweep.values(RATE_AXIS)
        if rates[0] > 0 and rates[-1] / rates[0] > 10:
            ax.set_xscale("log")  # loads spanning decades
        ax.set_xlabel("offered load (requests/s)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    ttft_ax.set_ylabel("time to first token (s)")
    tpot_ax.set_ylabel("time per output token (s)")
    return fig
