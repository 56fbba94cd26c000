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

# Dense weights: stored by default, --dense widened asks for the float32 copies; the two sum in
# different orders, so the NLLs agree to rounding but are reported as run.
expect 2 "--dense expects stored or widened, got 'f64'" "$llm" eval models/kjv-moe models/kjv-moe/heldout.txt --dense f64
widened=$("$llm" eval models/kjv-moe models/kjv-moe/heldout.txt --max-tokens 300 --dense widened)
grep -q '"dense": "stored"' <<<"$out" || { echo "FAIL: eval's default is not dense stored"; fails=$((fails + 1)); }
grep -q '"dense": "widened"' <<<"$widened" || { echo "FAIL: --dense widened not reported"; fails=$((fails + 1)); }
nll() { sed -n 's/.*"nll_per_token": \([-0-9.e]*\).*/\1/p' <<<"$1"; }
/usr/bin/python3 -c 'import sys; a, b = map(float, sys.argv[1:]); sys.exit(not (0 < a and abs(a - b) < 1e-5 * a))' \
    "$(nll "$out")" "$(nll "$widened")" ||
    { echo "FAIL: stored and widened NLL differ by more than rounding: $(nll "$out") vs $(nll "$widened")"; fails=$((fails + 1)); }

# bench engine's llama.cpp options: checked before anything loads; with a stand-in llama-bench
# (canned JSON, and a check of the arguments it is given) the medians and ratios are llama's.
bench="$(dirname "$llm")/bench-engine"
expect 2 "--dense expects stored or widened, got 'f64'" "$bench" --dense f64
expect 2 "--llama-bench and --gguf go together" "$bench" --gguf "$tmp/x.gguf"
expect 2 "--rounds alternates this engine with llama.cpp: it needs --llama-bench" "$bench" --rounds 2
expect 2 "--rounds expects a positive integer, got '0'" "$bench" --rounds 0
expect 2 "--llama-bench: '$tmp/nope' is not an executable file" "$bench" --llama-bench "$tmp/nope" --gguf "$tmp/x.gguf"
printf 'not a gguf file' >"$tmp/bad.gguf"
expect 2 "--gguf: '$tmp/bad.gguf' is not a readable GGUF file" "$bench" --llama-bench /bin/true --gguf "$tmp/bad.gguf"
printf 'GGUF' >"$tmp/x.gguf"
cat >"$tmp/llama-bench" <<SH
#!/bin/sh
[ "\$*" = "-m $tmp/x.gguf -t 1 -p 8 -n 4 -r 3 -o json" ] || { echo "arguments: \$*" >&2; exit 3; }
echo '[{"n_prompt": 8, "n_gen": 0, "build_commit": "abc", "samples_ts": [50, 70, 60]},'
echo ' {"n_prompt": 0, "n_gen": 4, "build_commit": "abc", "type_k": "f16", "samples_ts": [12, 10, 11]}]'
SH
chmod +x "$tmp/llama-bench"
fake=$("$bench" --model models/kjv-moe --prefill 8 --tokens 4 --runs 3 --rounds 2 --no-torch \
    --llama-bench "$tmp/llama-bench" --gguf "$tmp/x.gguf" 2>&1)
problems=$(/usr/bin/python3 - "$fake" <<'PY'
import sys
lines = dict(l.split(": ", 1) for l in sys.argv[1].splitlines() if ": " in l)
bad = []
want = {"llama_decode_tok_s": "11.00", "llama_prefill_tok_s": "60.00", "llama_kv_type": "f16",
        "dense": "stored", "torch": "skipped (--no-torch)"}
bad += ["%s: %r, want %r" % (k, lines.get(k), v) for k, v in want.items() if lines.get(k) != v]
try:
    ours, ratio = float(lines["wdmoe_tokens_per_s"]), float(lines["llama_decode_speedup"])
    if abs(ratio - ours / 11.0) > 0.002 * ratio + 0.001:
        bad.append("llama_decode_speedup %s is not %s / 11" % (ratio, ours))
    if not ("round_1" in lines and "round_2" in lines and "round_3" not in lines):
        bad.append("not exactly 2 rounds")
except (KeyError, ValueError) as e:
    bad.append("missing or bad line: %r" % e)
print("\n".join(bad))
PY
)
if [[ -n "$problems" ]]; then
    echo "FAIL: bench engine with a stand-in llama-bench:"
    echo "$problems"
    echo "$fake" | tail -20
    fails=$((fails + 1))
else
    echo "ok: bench engine with a stand-in llama-bench"
fi

# A malformed config names the file and the dotted field; nothing is written.
printf '{"model": "../models/kjv-moe", "evaluation": {"text": "x.txt", "max_tokns": 5}, "generation": {"prompt": "a"}}' >"$tmp/typo.json"
expect 1 "typo.json: field \"evaluation.max_tokns\" is not a known key" "$llm" run "$tmp/typo.json" --outDir "$tmp/out-typo"
[[ ! -e "$tmp/out-typo" ]] || { echo "FAIL: a failed run left $tmp/out-typo behind"; fails=$((fails + 1)); }
printf '{"model": "%s/models/kjv-moe", "evaluation": {"text": "%s/models/kjv-moe/heldout.txt", "max_tokens": 200}, "generation": {"prompt": "And", "tokens": 5}}' "$root" "$root" >"$tmp/small.json"
expect 0 "perplexity" "$llm" run "$tmp/small.json" --outDir "$tmp/out-small"
[[ -s "$tmp/out-small/summary.json" && ! -e "$tmp/out-small/summary.json.tmp" ]] ||
    { echo "FAIL: run did not leave exactly summary.json"; fails=$((fails + 1)); }

# The policy comparison (configs/policies.json cut to 2 runs of 16 tokens, a few seconds): stdout
# has one table naming every policy of the file; policies.csv and policies.json with the
# documented keys go to --outDir, with each policy's runs in run-R folders of its own. A bad
# entry or baseline in a copy of the file fails before anything runs, naming the field.
out=$(./wdmoe run configs/policies.json --outDir="$tmp/policies" --set statistics.runs=2 \
    --set workload.scored_tokens=16 2>"$tmp/policies.err")
rc=$?
if [[ $rc -ne 0 ]]; then
    echo "FAIL: ./wdmoe run configs/policies.json exited $rc:"
    tail -20 "$tmp/policies.err"
    fails=$((fails + 1))
else
    echo "ok: ./wdmoe run configs/policies.json"
fi
problems=$(/usr/bin/python3 - configs/policies.json "$tmp/policies" "$out" <<'PY'
import csv, json, os, sys
config, folder, printed = sys.argv[1], sys.argv[2], sys.argv[3].splitlines()
entries = json.load(open(config))["policies"]
names = [e["name"] for e in entries]
keys = ["policy", "runs", "tokens", "latency_mean_ms", "latency_p95_ms", "latency_change_pct",
        "latency_verdict", "experts_per_token_layer", "cache_hit_rate", "prefetch_accuracy",
        "perplexity", "perplexity_change_pct", "nll_change", "kl_divergence", "kl_change",
        "top1_agreement_with_topk", "selection_rounds_per_layer"]
intervals = ["latency_mean_ms", "latency_p95_ms", "latency_change_pct", "perplexity_change_pct",
             "nll_change", "kl_change"]
bad = []
header = [i for i, l in enumerate(printed) if l.startswith("policy ") and "latency %" in l]
rows = printed[header[0] + 1:] if header else []
if not header:
    bad.append("no table header on stdout")
for n in names:
    if not any(l.startswith(n + "  ") for l in rows):
        bad.append("the table lacks a row for %r" % n)
try:
    whole = json.load(open(os.path.join(folder, "policies.json")))
    if whole.get("statistics", {}).get("runs") != 2:
        bad.append("policies.json statistics %r" % whole.get("statistics"))
    table = whole["policies"]
    if [r.get("policy") for r in table] != names:
        bad.append("policies.json names %r" % [r.get("policy") for r in table])
    for r, e in zip(table, entries):
        missing = [k for k in keys if k not in r]
        if missing:
            bad.append("policies.json %r lacks %s" % (e["name"], missing))
        if (r.get("prefetch_accuracy") is None) == bool(e.get("prefetch")):
            bad.append("policies.json %r: prefetch_accuracy %r" % (e["name"], r.get("prefetch_accuracy")))
        for k in intervals:
            if not isinstance(r.get(k), dict) or len(r[k].get("ci", [])) != 2:
                bad.append("policies.json %r: %s is not {mean, ci: [low, high]}" % (e["name"], k))
    with open(os.path.join(folder, "policies.csv"), newline="") as f:
        lines = list(csv.reader(f))
    header = []
    for k in keys:
        header += [k, k + "_low", k + "_high"] if k in intervals else [k]
    if not lines or lines[0] != header:
        bad.append("policies.csv header %r" % (lines[0] if lines else None))
    if [l[0] for l in lines[1:]] != names:
        bad.append("policies.csv rows %r" % [l[0] for l in lines[1:]])
    runs = [d for d in os.listdir(folder) for r in ("run-1", "run-2")
            if os.path.isfile(os.path.join(folder, d, r, "summary.json"))]
    if len(runs) != 2 * len(names):
        bad.append("%d run folders with summary.json, wanted %d" % (len(runs), 2 * len(names)))
except (OSError, ValueError, IndexError, KeyError, AttributeError) as e:
    bad.append("result files: %r" % e)
print("\n".join(bad))
PY
)
if [[ -n "$problems" ]]; then
    echo "FAIL: the policy comparison's output:"
    echo "$problems"
    fails=$((fails + 1))
else
    echo "ok: the comparison table, policies.csv and policies.json"
fi
ln -s "$root/configs/profiles" "$tmp/profiles" # a copy of the config finds its profiles beside it
sed -e "s#\"\.\./models/#\"$root/models/#g" -e 's#"allocation": "proportional"#"allocation": "fair"#' \
    configs/policies.json >"$tmp/badrule.json"
expect 1 'badrule.json: field "policies\[1\]\.allocation" must be "equal", "proportional", "minmax" or "joint", got "fair"' \
    ./wdmoe run "$tmp/badrule.json" --outDir="$tmp/out-badrule"
sed -e "s#\"\.\./models/#\"$root/models/#g" -e 's#"baseline": "top-2 + equal"#"baseline": "top-3"#' \
    configs/policies.json >"$tmp/badbase.json"
expect 1 'badbase.json: field "baseline" names no entry of "policies": "top-3"' \
    ./wdmoe run "$tmp/badbase.json" --outDir="$tmp/out-badbase"
[[ ! -e "$tmp/out-badrule" && ! -e "$tmp/out-badbase" ]] ||
    { echo "FAIL: a comparison that failed its checks left results behind"; fails=$((fails + 1)); }

echo "$fails failed"
[[ $fails -eq 0 ]]
