#!/usr/bin/env bash
# The sweep runner under Open MPI, as users launch it: the same sweep.csv (byte for byte) as the
# local runner, each rank running only its share (point i on rank i % 2, read from the first line
# of each point's run.log), resume, a failed point failing every rank without a sweep.csv, and a
# bad sweep file reported once before anything runs.
# Usage: sweep-mpi-test.sh WDMOE_SWEEP REPO_ROOT (exit 77, ctest's skip, when mpirun is missing)
set -u
if ! command -v mpirun >/dev/null 2>&1; then
    echo "SKIP: mpirun not found (Debian: openmpi-bin and libopenmpi-dev; ./wdmoe test installs them)"
    exit 77
fi
sweep_exe=$(realpath "$1") # the sweeps below run in other folders
root="$2"
# As root Open MPI refuses to start without --allow-run-as-root; --oversubscribe lets two ranks
# run on a one-core machine; plm isolated starts local ranks without ssh (a container may lack it).
# In a sanitizer build (./wdmoe test --sanitize) LeakSanitizer would fail every rank at exit for
# Open MPI's own allocations, many of them in components it has unloaded (no frames to suppress
# by library); the other AddressSanitizer checks stay on, and the local run below (without
# mpirun) keeps the leak check for wdmoe-sweep itself.
mpi=(env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
     mpirun --allow-run-as-root --oversubscribe --mca plm isolated -np 2)
# shellcheck source=checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/local" "$tmp/mpi"

# ran_on POINT_DIR RANK: the point's run.log says that rank of 2 started it.
ran_on() { head -n 1 "$1/run.log" | grep -q "^# wdmoe-sweep rank $2 of 2 on "; }

cat >"$tmp/small.json" <<JSON
{"base": "$root/configs/default.json",
 "axes": {"devices.count": [2, 4], "workload.scored_tokens": [6], "run": [1, 2]}}
JSON
out=$(cd "$tmp/local" && "$sweep_exe" "$tmp/small.json" --jobs 2 2>&1)
check "the local sweep exits 0" [ $? -eq 0 ]
out=$(cd "$tmp/mpi" && "${mpi[@]}" "$sweep_exe" "$tmp/small.json" 2>&1)
rc=$?
check "the MPI sweep exits 0" [ $rc -eq 0 ]
((rc == 0)) || echo "$out"
check "rank 0 announces 2 ranks, 1 point at a time each" \
    grep -q "4 points, 0 already complete, 2 ranks, 1 at a time per rank" <<<"$out"
check "progress lines name their rank" grep -q "^  rank 1: 2/2 points done" <<<"$out"
check "the announcement comes once" [ "$(grep -c "already complete" <<<"$out")" -eq 1 ]
local_csv="$tmp/local/results/small/sweep.csv"
mpi_csv="$tmp/mpi/results/small/sweep.csv"
check "both sweeps wrote sweep.csv with 4 rows" \
    [ "$(wc -l <"$local_csv")" -eq 5 -a "$(wc -l <"$mpi_csv")" -eq 5 ]
check "the MPI sweep.csv is byte-identical to the local one" cmp "$local_csv" "$mpi_csv"
for i in 0 1 2 3; do
    check "point $i ran on rank $((i % 2))" ran_on "$tmp/mpi/results/small/points/000$i" $((i % 2))
done

out=$(cd "$tmp/mpi" && "${mpi[@]}" "$sweep_exe" "$tmp/small.json" 2>&1)
check "an MPI rerun skips the complete points" grep -q "(0 run, 4 skipped)" <<<"$out"
rm "$tmp/mpi/results/small/points/0003/summary.json"
out=$(cd "$tmp/mpi" && "${mpi[@]}" "$sweep_exe" "$tmp/small.json" 2>&1)
check "an interrupted point is run again under MPI" grep -q "(1 run, 3 skipped)" <<<"$out"
check "by its own rank" ran_on "$tmp/mpi/results/small/points/0003" 1
check "sweep.csv is the same again" cmp "$local_csv" "$mpi_csv"

# A point that passes the checks and fails when it runs: its model's weights are cut short.
mkdir "$tmp/broken-model"
cp "$root/models/kjv-moe/config.json" "$root/models/kjv-moe/sensitivity.json" "$tmp/broken-model/"
head -c 4096 "$root/models/kjv-moe/model.safetensors" >"$tmp/broken-model/model.safetensors"
cat >"$tmp/fail.json" <<JSON
{"base": "$root/configs/default.json",
 "points": [{"model.path": "$root/models/kjv-moe", "workload.scored_tokens": 6,
             "cost_model": {"preset": "mixtral-8x7b", "layers": "routed"}},
            {"model.path": "$tmp/broken-model", "workload.scored_tokens": 6,
             "cost_model": {"preset": "mixtral-8x7b", "layers": "routed"}}]}
JSON
out=$(cd "$tmp/mpi" && "${mpi[@]}" "$sweep_exe" "$tmp/fail.json" 2>&1)
check "a failed point under MPI exits non-zero" [ $? -ne 0 ]
check "it names the point and its log" grep -q "point 1 (.*broken-model.*) failed; see" <<<"$out"
check "no sweep.csv" [ ! -e "$tmp/mpi/results/fail/sweep.csv" ]
check "rank 0's own point still completed" [ -s "$tmp/mpi/results/fail/points/0000/summary.json" ]
# Each rank's own exit status, printed by a wrapper that always exits 0 so that mpirun does not
# cut the other rank short when the first one exits non-zero.
# shellcheck disable=SC2016 # the wrapper's own "$@" and $OMPI_COMM_WORLD_RANK
out=$(cd "$tmp/mpi" && "${mpi[@]}" bash -c \
    '"$@"; echo "rank $OMPI_COMM_WORLD_RANK exited $?"' wrapper "$sweep_exe" "$tmp/fail.json" 2>&1)
check "rank 0 exits 1" grep -qx "rank 0 exited 1" <<<"$out"
check "rank 1 exits 1" grep -qx "rank 1 exited 1" <<<"$out"

cat >"$tmp/bad.json" <<JSON
{"base": "$root/configs/default.json", "axes": {"devices.count": [2, 0]}}
JSON
out=$(cd "$tmp/mpi" && "${mpi[@]}" "$sweep_exe" "$tmp/bad.json" 2>&1)
check "a bad point under MPI exits non-zero" [ $? -ne 0 ]
check "its message names the point and the field, once" \
    [ "$(grep -c "point 1 (devices.count=0).*devices.count" <<<"$out")" -eq 1 ]
check "nothing ran" [ ! -d "$tmp/mpi/results/bad" ]

if ((fails)); then
    echo "$fails failure(s)"
    exit 1
fi
