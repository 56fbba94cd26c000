#!/usr/bin/env bash
# Command-line behaviour users script against: exit codes, error messages, eval's JSON keys,
# run's result file. Usage: cli-test.sh WDMOE_LLM_BINARY REPO_ROOT
set -u
llm="$1"
root="$2"
cd "$root"
fails=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expect() { # expect CODE PATTERN-IN-OUTPUT COMMAND...
    local code="$1" pattern="$2"
    shift 2
    local out rc
    out=$("$@" 2>&1)
    rc=$?
    if [[ $rc -ne $code ]] || ! grep -qE -- "$pattern" <<<"$out"; then
        echo "FAIL: '$*' exited $rc (wanted $code), output wanted /$pattern/:"
        echo "$out" | head -20
        fails=$((fails + 1))
    else
        echo "ok: $*"
    fi
}

expect 2 "unknown subcommand 'frob'" ./wdmoe frob
expect 2 "unknown flag '--frob'" ./wdmoe --frob
expect 2 "unknown benchmark" ./wdmoe bench nope
expect 0 "Subcommands" ./wdmoe --help
expect 1 "configuration file not found" ./wdmoe run "$tmp/none.json"
expect 2 "run: unknown option '--bogus=1'" ./wdmoe run --bogus=1
expect 2 "unknown subcommand 'frob'" "$llm" frob
expect 2 "unknown option '--bogus'" "$llm" eval models/kjv-moe models/kjv-moe/heldout.txt --bogus 1
expect 2 "--dtype expects f32, bf16 or f16" "$llm" eval models/kjv-moe models/kjv-moe/heldout.txt --dtype f8
expect 2 "--max-tokens expects an integer" "$llm" eval models/kjv-moe models/kjv-moe/heldout.txt --max-tokens -5
expect 0 "usage: wdmoe eval" "$llm" eval --help
expect 0 "usage: wdmoe generate" "$llm" generate --help
expect 1 "$tmp/nomodel.*config.json" "$llm" eval "$tmp/nomodel" models/kjv-moe/heldout.txt
expect 1 "nothere.txt: cannot open" "$llm" eval models/kjv-moe "$tmp/nothere.txt"
expect 0 '"nll_per_token".*' "$llm" eval models/kjv-moe models/kjv-moe/heldout.txt --max-tokens 300
out=$("$llm" eval models/kjv-moe models/kjv-moe/heldout.txt --max-tokens 300)
for key in tokens nll_per_token perplexity top1_accuracy; do
    grep -q "\"$key\"" <<<"$out" || { echo "FAIL: eval JSON lacks $key"; fails=$((fails + 1)); }
done
grep -q '"tokens": 300,' <<<"$out" || { echo "FAIL: eval did not score exactly 300 tokens"; fails=$((fails + 1)); }
expect 0 "^In the beginning" "$llm" generate models/kjv-moe "In the beginning" --tokens 10

# A malformed config names the file and the dotted field; nothing is written.
printf '{"model": "../models/kjv-moe", "evaluation": {"text": "x.txt", "max_tokns": 5}, "generation": {"prompt": "a"}}' >"$tmp/typo.json"
expect 1 "typo.json: field \"evaluation.max_tokns\" is not a known key" "$llm" run "$tmp/typo.json" --outDir "$tmp/out-typo"
[[ ! -e "$tmp/out-typo" ]] || { echo "FAIL: a failed run left $tmp/out-typo behind"; fails=$((fails + 1)); }
printf '{"model": "%s/models/kjv-moe", "evaluation": {"text": "%s/models/kjv-moe/heldout.txt", "max_tokens": 200}, "generation": {"prompt": "And", "tokens": 5}}' "$root" "$root" >"$tmp/small.json"
expect 0 "perplexity" "$llm" run "$tmp/small.json" --outDir "$tmp/out-small"
[[ -s "$tmp/out-small/summary.json" && ! -e "$tmp/out-small/summary.json.tmp" ]] ||
    { echo "FAIL: run did not leave exactly summary.json"; fails=$((fails + 1)); }

echo "$fails failed"
[[ $fails -eq 0 ]]
