#!/usr/bin/env bash
# A short fuzz run of one harness on its seed corpus and dictionary: libFuzzer in a -DWDMOE_FUZZ=ON
# build, fuzz-replay.cc's replay and random edits in any other (both take these options).
# Fails on a crash, a sanitizer report or an unexpected exception, leaving the input in WORK_DIR.
# Usage: smoke.sh BINARY FUZZ_DIR TARGET WORK_DIR SECONDS
set -u
binary="$1" fuzz_dir="$2" target="$3" work="$4/$3" seconds="$5"
mkdir -p "$work/corpus"
# New inputs libFuzzer finds go to $work/corpus (the first folder), never into the repository.
"$binary" -max_total_time="$seconds" -dict="$fuzz_dir/$target.dict" -artifact_prefix="$work/" \
    "$work/corpus" "$fuzz_dir/corpus/$target" 2>&1 | tail -30
status=${PIPESTATUS[0]}
if ((status != 0)); then
    echo "FAIL: fuzz-$target exited $status; the input that failed is in $work/"
fi
exit "$status"
