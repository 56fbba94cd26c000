#!/usr/bin/env bash
# Regenerates the plot tests' result set (run/, policies/, sweep/, memory-sweep/,
# threshold-sweep/, serving-sweep/) with the real programs from configs/ here. Usage: make.sh [BIN_DIR]
# (default: the repository's build/bin).
# Run after a change to the result files' format; the plot tests only read what this writes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${1:-$here/../../../build/bin}"
cd "$here" # relative paths keep the machine's folders out of the committed files
rm -rf run policies sweep memory-sweep threshold-sweep serving-sweep results
"$bin/wdmoe-run" --config=configs/run.json --outDir=run >/dev/null
"$bin/wdmoe-run" --config=configs/policies.json --outDir=policies >/dev/null 2>&1
# wdmoe-sweep writes results/<sweep name>/ under the current folder.
"$bin/wdmoe-sweep" configs/sweep.json --jobs 1 2>/dev/null
"$bin/wdmoe-sweep" configs/memory-sweep.json --jobs 1 2>/dev/null
"$bin/wdmoe-sweep" configs/threshold-sweep.json --jobs 1 2>/dev/null
"$bin/wdmoe-sweep" configs/serving-sweep.json --jobs 1 2>/dev/null
mv results/sweep sweep
mv results/memory-sweep memory-sweep
mv results/threshold-sweep threshold-sweep
mv results/serving-sweep serving-sweep
rmdir results
du -sh run policies sweep memory-sweep threshold-sweep serving-sweep
