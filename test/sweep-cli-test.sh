#!/usr/bin/env bash
# ./wdmoe sweep as users run it: every point run, sweep.csv merged, a rerun skips complete
# points and redoes an incomplete one, a bad point fails before anything runs; a config field
# given as --dotted.key=value on ./wdmoe run. Usage: sweep-cli-test.sh REPO_ROOT
set -u
root="$1"
# shellcheck source=checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

cat >"$tmp/small.json" <<JSON
{"base": "$root/configs/default.json",
 "axes": {"devices.count": [2, 4], "workload.scored_tokens": [6], "run": [1, 2]}}
JSON
out=$("$root/wdmoe" sweep "$tmp/small.json" --jobs 2 2>&1)
check "sweep exits 0" [ $? -eq 0 ]
check "progress lines name points done" grep -q "4/4 points done" <<<"$out"
csv="$tmp/results/small/sweep.csv"
check "sweep.csv has a header and 4 rows" [ "$(wc -l <"$csv")" -eq 5 ]
check "sweep.csv has one column per axis" \
    grep -q "^point,devices.count,workload.scored_tokens,run,results," "$csv"
check "runs differ in the run column" grep -q "^3,4,6,2," "$csv"
check "then the figure its devices axis supports" \
    [ -s "$tmp/results/small/figures/latency-vs-devices.png" ]
check "... and where it is" grep -q "figures in results/small/figures/" <<<"$out"

# A sweep no figure can use (only a run axis) still succeeds, saying so.
cat >"$tmp/runs.json" <<JSON
{"base": "$root/configs/default.json", "axes": {"workload.scored_tokens": [6], "run": [1, 2]}}
JSON
out=$("$root/wdmoe" sweep "$tmp/runs.json" --jobs 2 2>&1)
check "a sweep without a plottable axis exits 0" [ $? -eq 0 ]
check "... says no figure could be made" grep -q "no figure could be made" <<<"$out"
check "... and writes no figures folder" [ ! -d "$tmp/results/runs/figures" ]

out=$("$root/wdmoe" sweep "$tmp/small.json" 2>&1)
check "a rerun skips the complete points" grep -q "(0 run, 4 skipped)" <<<"$out"
rm "$tmp/results/small/points/0002/summary.json"
out=$("$root/wdmoe" sweep "$tmp/small.json" 2>&1)
check "an interrupted point is run again, the others skipped" grep -q "(1 run, 3 skipped)" <<<"$out"
check "its summary is back" [ -s "$tmp/results/small/points/0002/summary.json" ]

cat >"$tmp/bad.json" <<JSON
{"base": "$root/configs/default.json", "axes": {"devices.count": [2, 0]}}
JSON
out=$("$root/wdmoe" sweep "$tmp/bad.json" 2>&1)
check "a bad point exits 1" [ $? -eq 1 ]
check "its message names the point and the field" grep -q "point 1 (devices.count=0).*devices.count" <<<"$out"
check "nothing ran" [ ! -d "$tmp/results/bad" ]

out=$("$root/wdmoe" run "$root/configs/default.json" --workload.scored_tokens=5 --outDir="$tmp/one" 2>&1)
check "run takes a config field as --dotted.key=value" grep -q '"tokens_scored": 5' "$tmp/one/summary.json"

if ((fails)); then
    echo "$fails failure(s)"
    exit 1
fi
