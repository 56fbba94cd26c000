#!/usr/bin/env bash
# Bad input on the command line, as a new user meets it (issue 11's list): every case ends in a
# message naming the file or option and the field, exit 1, within seconds and bounded memory,
# never a signal; the legitimate ones (mobility models, a long context, few tokens) work.
# Usage: bad-input-cli-test.sh BIN_DIR REPO_ROOT
set -u
bin="$1"
root="$2"
# shellcheck source=checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
ln -s "$root/configs/profiles" "$tmp/profiles"
ln -s "$root/models" "$tmp/models"

# expect CODE PATTERN COMMAND...: exit CODE within 60 s, PATTERN (grep -E) in its output, and a
# peak memory below 1 GB (/usr/bin/time's %M, in kB).
expect() {
    local code="$1" pattern="$2"
    shift 2
    local out rc kb
    out=$(timeout 60 /usr/bin/time -f "peak-kb %M" "$@" 2>&1)
    rc=$?
    kb=$(sed -n 's/^peak-kb //p' <<<"$out" | tail -1)
    if [[ $rc -ne $code ]] || ! grep -qE -- "$pattern" <<<"$out" || [[ -z "$kb" || $kb -gt 1000000 ]]; then
        echo "FAIL: '$*' exited $rc (wanted $code), peak ${kb:-?} kB, output wanted /$pattern/:"
        head -c 2000 <<<"$out"
        echo
        fails=$((fails + 1))
    else
        echo "ok: $* (${kb} kB)"
    fi
}

run="$bin/wdmoe-run"
cfg="$root/configs/default.json"
fast=(--workload.scored_tokens=5)

# Deep nesting: signal 11 in wdmoe-run, wdmoe-llm run and wdmoe-sweep.
/usr/bin/python3 - "$tmp" "$root" <<'PY'
import json, sys
tmp, root = sys.argv[1], sys.argv[2]
deep = "[" * 1000000 + "]" * 1000000
base = json.load(open(root + "/configs/default.json"))
base["model"]["path"] = root + "/models/kjv-moe"
base["workload"]["text"] = root + "/models/kjv-moe/heldout.txt"
text = json.dumps(base)
for key in ("description", "seed"):  # set below (a key twice would be refused first)
    del base[key]
text, full = json.dumps(base), text
open(tmp + "/deep.json", "w").write(text[:-1] + ', "description": ' + deep + "}")
open(tmp + "/typed.json", "w").write(text[:-1] + ', "seed": ' + "[" * 65000 + "]" * 65000 + "}")
open(tmp + "/big-number.json", "w").write(text[:-1] + ', "seed": 1e400}')
open(tmp + "/base.json", "w").write(full)
open(tmp + "/engine-deep.json", "w").write('{"model": "%s/models/kjv-moe", "generation": %s}' % (root, deep))
open(tmp + "/sweep-deep.json", "w").write('{"base": "base.json", "axes": {"run": %s}}' % deep)
ten = "[" + ", ".join(str(i) for i in range(10)) + "]"
keys = ["cell.nope", "cell.bandwidth_mhz", "run", "seed", "cell.radius_m", "typo.field",
        "cell.carrier_ghz", "cell.bs_power_dbm", "x"]
open(tmp + "/sweep-huge.json", "w").write(
    '{"base": "base.json", "axes": {' + ", ".join('"%s": %s' % (k, ten) for k in keys) + "}}")
PY
expect 1 "deep.json: objects and arrays nest more than 64 levels deep" "$run" --config="$tmp/deep.json"
expect 1 "typed.json: objects and arrays nest more than 64 levels deep" "$run" --config="$tmp/typed.json"
expect 1 "engine-deep.json: objects and arrays nest more than 64" "$bin/wdmoe-llm" run "$tmp/engine-deep.json"
expect 1 "sweep-deep.json: objects and arrays nest more than 64" "$bin/wdmoe-sweep" "$tmp/sweep-deep.json"
expect 1 'big-number.json: a number is too large for a double: .*out_of_range.406' "$run" --config="$tmp/big-number.json"
# The 9 x 10 sweep took 6 GB in 40 s before its keys were checked.
expect 1 'sweep-huge.json: the first value of every axis .*field "typo" is not a known key' \
    "$bin/wdmoe-sweep" "$tmp/sweep-huge.json"
check "nothing ran for a refused sweep" [ ! -d "$tmp/results" ]

# The shortcuts go through --set's checks and name themselves.
expect 1 'field "devices.count" must be an integer in \[1, 4096\], got 1000000 \(set by --devices=1000000\)' \
    "$run" --config="$cfg" --devices=1000000
expect 1 'field "cell.bandwidth_mhz" must be a number in \[0.001, 100000\], got -5 \(set by --bandwidthMHz=-5\)' \
    "$run" --config="$cfg" --bandwidthMHz=-5
expect 1 'field "run" must be an integer in \[1, 4294967295\], got "abc" \(set by --RngRun=abc\)' \
    "$run" --config="$cfg" --RngRun=abc
# ... and a run that differs from the config writes a folder of its own.
check "default folder: results/default" [ "$("$run" --config="$cfg" --printOutDir)" = results/default ]
check "with --devices=4: results/default+devices=4" \
    [ "$("$run" --config="$cfg" --devices=4 --printOutDir)" = results/default+devices=4 ]
expect 0 "cell +4 x jetson-agx-orin, 20 MHz" "$run" --config="$cfg" --devices=4 --bandwidthMHz=20 --RngRun=3 "${fast[@]}"
out="$tmp/results/default+devices=4+bandwidthMHz=20+RngRun=3+workload.scored_tokens=5"
check "... into $out" [ -s "$out/summary.json" ]
check "... not over results/default" [ ! -e "$tmp/results/default" ]
check "config_echo shows the values used" /usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
e = s["config_echo"]
sys.exit(0 if (e["devices"]["count"], e["cell"]["bandwidth_mhz"], e["run"], s["run"]) == (4, 20, 3, 3) else 1)' \
    "$out/summary.json"

# A coherence time too short for the run aborted (signal 6) inside the channel.
expect 1 'field "cell.coherence_time_ms" is too short for this run: .* use a longer CoherenceTime' \
    "$run" --config="$cfg" --bandwidthMHz=0.001 --set cell.coherence_time_ms=0.001 --outDir="$tmp/coherence"
check "... and wrote nothing" [ ! -e "$tmp/coherence" ]

# Every mobility model the cell supports runs; the others are refused by name.
for model in GaussMarkov RandomWaypoint SteadyStateRandomWaypoint RandomWalk2d RandomDirection2d; do
    expect 0 "perplexity" "$run" --config="$cfg" --set "cell.mobility=ns3::${model}MobilityModel" \
        "${fast[@]}" --outDir="$tmp/mob-$model"
done
expect 1 'field "cell.mobility" is "ns3::ConstantVelocityMobilityModel", which keeps a velocity that no config field sets.*"ns3::SteadyStateRandomWaypointMobilityModel"' \
    "$run" --config="$cfg" --set cell.mobility=ns3::ConstantVelocityMobilityModel

# Drops by phase: a 100 ms layer deadline drops experts in the prefill (it was printed as
# "decode: ... dropped").
expect 0 "prefill: dropped [1-9]" "$run" --config="$cfg" --set cell.layer_deadline_ms=100 "${fast[@]}" --outDir="$tmp/deadline"
check "summary.json splits the drops by phase" /usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
sys.exit(0 if s["experts_dropped_prefill"] > 0 and
         s["experts_dropped_prefill"] + s["experts_dropped_decode"] == s["experts_dropped"] else 1)' \
    "$tmp/deadline/summary.json"
# A failure aimed at a device that holds nothing: with the 4-layer model's 32 experts,
# round-robin leaves devices 32-39 empty.
four=(--set model.path="$root/models/kjv-moe" --set workload.text="$root/models/kjv-moe/heldout.txt"
      --set 'cost_model={"preset": "mixtral-8x7b", "layers": "routed"}')
expect 0 "warning: failures\[0\]: device 39 holds no expert" "$run" --config="$cfg" "${four[@]}" --devices=40 \
    --set placement.algorithm=round-robin --set cell.layer_deadline_ms=100 \
    --set 'failures=[{"device": 39, "at_s": 0}]' "${fast[@]}" --outDir="$tmp/empty-failure"
check "... and in summary.json" grep -q '"failures\[0\]: device 39 holds no expert' "$tmp/empty-failure/summary.json"

# config.json fields the engine does not implement, and a long context with a short eval.
mkdir -p "$tmp/gelu" "$tmp/long" "$tmp/huge"
for d in gelu long huge; do
    ln -s "$root/models/kjv-moe/model.safetensors" "$tmp/$d/model.safetensors"
done
sed 's/"silu"/"gelu"/' "$root/models/kjv-moe/config.json" >"$tmp/gelu/config.json"
sed 's/"max_position_embeddings": 128/"max_position_embeddings": 10000000/' \
    "$root/models/kjv-moe/config.json" >"$tmp/long/config.json"
sed 's/"max_position_embeddings": 128/"max_position_embeddings": 2147483647/' \
    "$root/models/kjv-moe/config.json" >"$tmp/huge/config.json"
expect 1 'gelu/config.json: field "hidden_act" is "gelu", but the engine implements the expert activation "silu" only' \
    "$bin/wdmoe-llm" eval "$tmp/gelu" "$root/models/kjv-moe/heldout.txt" --max-tokens 16
# A cache of the context would be 20 GB; one of the 17 tokens scored is a few kB.
expect 0 '"tokens": 16,' "$bin/wdmoe-llm" eval "$tmp/long" "$root/models/kjv-moe/heldout.txt" --max-tokens 16
# A cache that really does not fit says so, with its size, before allocating.
expect 1 'a KV cache of 2000000005 tokens \(4 layers, 64 keys and values each per token\) needs 4.1 TB' \
    "$bin/wdmoe-llm" generate "$tmp/huge" "Hello" --tokens 2000000000

# A tensor of a dtype the engine does not read is skipped with a note, not a failure.
mkdir -p "$tmp/extra"
cp "$root/models/kjv-moe/config.json" "$tmp/extra/"
/usr/bin/python3 - "$root/models/kjv-moe/model.safetensors" "$tmp/extra/model.safetensors" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
header["extra.step"] = {"dtype": "I64", "shape": [1], "data_offsets": [len(data), len(data) + 8]}
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + data + bytes(8))
PY
expect 0 'note: .*extra/model.safetensors: tensor "extra.step" \(I64\) skipped' \
    "$bin/wdmoe-llm" eval "$tmp/extra" "$root/models/kjv-moe/heldout.txt" --max-tokens 16
# Options that do not fit their type are refused (3000000000 tokens wrapped to a negative int).
expect 2 "--tokens expects an integer from 1 to 2147483647, got '3000000000'" \
    "$bin/wdmoe-llm" generate "$root/models/kjv-moe" "And" --tokens 3000000000
expect 2 "--threads expects an integer from 0 to 1024" \
    "$bin/wdmoe-llm" eval "$root/models/kjv-moe" "$root/models/kjv-moe/heldout.txt" --threads 100000

if ((fails)); then
    echo "$fails failure(s)"
    exit 1
fi
