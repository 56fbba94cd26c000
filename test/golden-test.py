#!/usr/bin/python3
"""Golden results: reruns pinned scenarios with build/bin/wdmoe-run and compares them with the
copies in test/data/golden/, so that results do not move by accident.

Pinned (all on the 4-layer models/kjv-moe, each routed layer priced as one Mixtral-8x7B layer,
run 1): on the ideal link (static shares, hints without airtime) the default cell
(configs/ideal-link.json), the same in FDD with a 0.3 uplink share, and every policy of
configs/policies.json with a 2-slot expert memory (so caches and prefetch matter); and the
default scenario on its realistic link (configs/default.json: TDD, the fitted LTE mapping and
overheads, subbands, Doppler, CSI delay, work-conserving sharing).
tokens.csv must be byte-identical; summary.json must be equal as JSON except "timing" (wall
time, which measures the machine).

Usage: golden-test.py WDMOE_RUN REPO_ROOT [--update]
--update rewrites test/data/golden/ from this build (say in the commit which numbers moved and
why).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

FOUR_LAYERS = [
    "--set", "model.path=../models/kjv-moe",
    # The vector ISAs sum in different orders (NLL moves in its 7th digit): pinned to AVX2,
    # which every machine the suite runs on has, so that AVX-512 machines match too.
    "--set", "model.kernel=avx2",
    "--set", "workload.text=../models/kjv-moe/heldout.txt",
    "--set", 'cost_model={"preset": "mixtral-8x7b", "layers": "routed"}',
]

# The ideal link the golden results were made on: static shares, hints that take no airtime.
IDEAL_LINK = [
    "--set", "cell.work_conserving=false",
    "--set", "cell.hint_airtime=false",
]

# name -> (config, extra arguments); a comparison writes <policy>/run-1/ per policy.
CASES = {
    "default": ("configs/ideal-link.json", IDEAL_LINK),
    "default-fdd": ("configs/ideal-link.json",
                    IDEAL_LINK + ["--set", "cell.duplex=fdd", "--set", "cell.ul_share=0.3"]),
    "policies": ("configs/policies.json",
                 IDEAL_LINK + ["--set", "statistics.runs=1", "--set", "workload.scored_tokens=256",
                               "--set", "devices.memory_fraction=0.1"]),
    "realistic": ("configs/default.json", []),
}


def run_case(wdmoe_run, root, config, extra, out_dir):
    cmd = [wdmoe_run, "--config=" + config, "--outDir=" + out_dir]
    cmd += FOUR_LAYERS + extra
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit("FAIL: %s exited %d:\n%s" % (" ".join(cmd), done.returncode,
                                             done.stdout + done.stderr))


def result_files(folder):
    """Every summary.json and tokens.csv under folder, as paths relative to it."""
    found = []
    for here, _, files in os.walk(folder):
        for name in files:
            if name in ("summary.json", "tokens.csv"):
                found.append(os.path.relpath(os.path.join(here, name), folder))
    return sorted(found)


def without_timing(path):
    with open(path) as f:
        summary = json.load(f)
    summary.pop("timing", None)
    return summary


def differences(golden, fresh):
    """What differs between two result folders, one line per difference."""
    lines = []
    want, got = result_files(golden), result_files(fresh)
    if want != got:
        lines.append("files differ: golden %s, now %s" % (want, got))
    for rel in sorted(set(want) & set(got)):
        a, b = os.path.join(golden, rel), os.path.join(fresh, rel)
        if rel.endswith(".csv"):
            with open(a, "rb") as fa, open(b, "rb") as fb:
                if fa.read() != fb.read():
                    lines.append("%s: not byte-identical" % rel)
        else:
            sa, sb = without_timing(a), without_timing(b)
            for key in sorted(set(sa) | set(sb)):
                if sa.get(key) != sb.get(key):
                    lines.append("%s: %s was %s, now %s" % (
                        rel, key, json.dumps(sa.get(key))[:200], json.dumps(sb.get(key))[:200]))
    return lines


def drop_timing(folder):
    """Removes "timing" from every summary.json (the pinned copies hold no wall times)."""
    for rel in result_files(folder):
        if rel.endswith("summary.json"):
            path = os.path.join(folder, rel)
            summary = without_timing(path)
            with open(path, "w") as f:
                json.dump(summary, f, indent=2)
                f.write("\n")


def keep_results_only(folder):
    """Removes everything but summary.json and tokens.csv (figures, tables, logs)."""
    keep = set(result_files(folder))
    for here, dirs, files in os.walk(folder, topdown=False):
        for name in files:
            rel = os.path.relpath(os.path.join(here, name), folder)
            if rel not in keep:
                os.remove(os.path.join(here, name))
        for name in dirs:
            path = os.path.join(here, name)
            if not os.listdir(path):
                os.rmdir(path)


def main():
    if len(sys.argv) not in (3, 4) or (len(sys.argv) == 4 and sys.argv[3] != "--update"):
        sys.exit(__doc__)
    wdmoe_run, root = sys.argv[1], os.path.abspath(sys.argv[2])
    update = len(sys.argv) == 4
    golden_root = os.path.join(root, "test", "data", "golden")
    fails = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, (config, extra) in CASES.items():
            fresh = os.path.join(tmp, name)
            run_case(wdmoe_run, root, config, extra, fresh)
            keep_results_only(fresh)
            golden = os.path.join(golden_root, name)
            if update:
                shutil.rmtree(golden, ignore_errors=True)
                shutil.copytree(fresh, golden)
                drop_timing(golden)
                print("updated: %s (%d files)" % (name, len(result_files(golden))))
                continue
            lines = differences(golden, fresh)
            if lines:
                fails += 1
                print("FAIL: %s moved:" % name)
                for line in lines[:40]:
                    print("  " + line)
            else:
                print("ok: %s (%d files) as pinned" % (name, len(result_files(golden))))
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
