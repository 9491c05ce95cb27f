#!/usr/bin/env bash
# ci/gpu_lm_check.sh — issue 24 acceptance 7 on a GPU machine: the lm task
# through transformers + HF PEFT (trainers/pytorch/train_lm.py, the
# command trainer of experiments/lm-gpu.toml) against the builtin engine,
# same tiny checkpoint, same rows, fp32; every metric within 1e-3 relative.
#
# usage: ci/gpu_lm_check.sh [WORKDIR]
#   BENCH             the bench binary, built beforehand (default ./bench;
#                     this script builds nothing: go build -o bench ./cmd/bench
#                     where Go is, then carry it)
#   PEFTBENCH_PYTHON  Python with torch (CUDA), transformers and peft
#                     (default /usr/bin/python3)
#   FAMILIES          tiny checkpoints to try (default "neox gpt2 llama":
#                     fused qkv, GPT-2's Conv1D/fan_in_fan_out and tied head,
#                     grouped-query attention)
#   TOL               relative tolerance (default 1e-3)
#
# For each family: bench make-lm (F32), the lm-gpu sweep (lora, dora, ia3 ×
# 2 seeds) on the builtin engine (the file cut at its "GPU path" marker) and
# through the command trainer on the GPU, then one table of both sides'
# metrics. Exit 0 when every trial is ok on both sides and every metric
# agrees; 1 on a disagreement; 2 on a set-up failure.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
BENCH=${BENCH:-./bench}
PY=${PEFTBENCH_PYTHON:-/usr/bin/python3}
FAMILIES=${FAMILIES:-neox gpt2 llama}
TOL=${TOL:-1e-3}
W=${1:-${TMPDIR:-/tmp}/peftbench-gpu-lm}

[ -x "$BENCH" ] || { echo "gpu_lm_check: no bench binary at $BENCH (go build -o bench ./cmd/bench; set BENCH)" >&2; exit 2; }
BENCH=$(cd "$(dirname "$BENCH")" && pwd)/$(basename "$BENCH")
"$PY" - <<'PYEOF' || { echo "gpu_lm_check: $PY cannot import torch, transformers and peft" >&2; exit 2; }
import torch, transformers, peft
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (the trainer runs on the CPU)"
print("torch %s (CUDA %s), transformers %s, peft %s; GPU: %s" % (
    torch.__version__, torch.version.cuda, transformers.__version__, peft.__version__, gpu))
PYEOF
nvidia-smi -L 2>/dev/null || echo "gpu_lm_check: no nvidia-smi: the sweep's gpus = \"auto\" finds no GPU; set gpus by hand" >&2

rm -rf "$W"
mkdir -p "$W"
status=0
for fam in $FAMILIES; do
	d="$W/$fam"
	mkdir -p "$d"
	"$BENCH" make-lm --family "$fam" --dtype f32 --data --out "$d/model" --data-dir "$d/data" >/dev/null
	export PEFTBENCH_LM_QUICK="$d"
	# The builtin twin: everything above the GPU-path marker, renamed.
	sed -n '/^# --- GPU path/q;p' experiments/lm-gpu.toml |
		sed 's/^name = "lm-gpu"$/name = "lm-gpu-builtin"/' >"$d/builtin.toml"
	# The GPU side: the file as it is, the trainer's paths made absolute
	# (the copy lives outside experiments/) and bench passed to it.
	sed -e "s|^command = .*|command = [\"$PY\", \"$repo/trainers/pytorch/train_lm.py\"]\nenv = { PEFTBENCH_BENCH = \"$BENCH\" }|" \
		experiments/lm-gpu.toml >"$d/gpu.toml"
	echo "== $fam: builtin engine"
	"$BENCH" run "$d/builtin.toml" --out "$d/results" >"$d/builtin.log" 2>&1 || { cat "$d/builtin.log"; status=2; continue; }
	tail -1 "$d/builtin.log"
	echo "== $fam: transformers + HF PEFT (train_lm.py)"
	"$BENCH" run "$d/gpu.toml" --out "$d/results" >"$d/gpu.log" 2>&1 || { cat "$d/gpu.log"; status=2; }
	tail -1 "$d/gpu.log"
	"$BENCH" export-table "$d/results/lm-gpu-builtin" --format jsonl >"$d/builtin.jsonl"
	"$BENCH" export-table "$d/results/lm-gpu" --format jsonl >"$d/gpu.jsonl"
	"$PY" - "$fam" "$d/builtin.jsonl" "$d/gpu.jsonl" "$TOL" "$d/results/lm-gpu" <<'PYEOF' || status=$((status > 1 ? status : 1))
import glob, json, math, os, sys
fam, bpath, gpath, tol, gdir = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5]
def rows(p):
    return {(r["method"], r["seed"]): r for r in map(json.loads, open(p))}
b, g = rows(bpath), rows(gpath)
# (column, relative tolerance, absolute floor): accuracies may flip a
# token at an argmax tie; forgetting is near 0 at step 0-like runs.
cols = [("target_loss", tol, 0), ("val_loss", tol, 0), ("retain_loss_before", 1e-5, 0), ("extra_target_loss_before", 1e-5, 0),
        ("retain_loss_after", tol, 0), ("forgetting", tol, 1e-6), ("extra_forgetting_ce", tol, 0),
        ("extra_perplexity", tol, 0), ("target_metric", tol, 2 / 1024), ("val_metric", tol, 2 / 1024),
        ("retain_metric_after", tol, 2 / 1024), ("trainable_params", 0, 0), ("steps", 0, 0)]
bad = 0
print("%-6s %-6s %-4s %-22s %14s %14s %10s  %s" % ("family", "method", "seed", "metric", "builtin", "hf-peft", "rel", ""))
for key in sorted(b):
    rb, rg = b[key], g.get(key)
    if rg is None or rb["status"] != "ok" or rg["status"] != "ok":
        print("%-6s %-6s %-4s status builtin %s, hf-peft %s: %s" % (fam, key[0], key[1], rb["status"],
              rg and rg["status"], (rg or {}).get("error", "missing")))
        bad += 1
        continue
    for c, rel, floor in cols:
        x, y = rb.get(c), rg.get(c)
        ok = x is not None and y is not None and abs(x - y) <= floor + rel * abs(x)
        r = abs(x - y) / abs(x) if x and y is not None else float("nan")
        bad += not ok
        print("%-6s %-6s %-4s %-22s %14.7g %14.7g %10.2g  %s" % (fam, key[0], key[1], c,
              float("nan") if x is None else x, float("nan") if y is None else y, r, "ok" if ok else "DIFFERS"))
    print("%-6s %-6s %-4s %-22s %14.4g %14.4g" % (fam, key[0], key[1], "tokens_per_s", rb.get("tokens_per_s") or 0, rg.get("tokens_per_s") or 0))
# Which initial tensors each GPU trial used (train_lm.py logs it).
for log in sorted(glob.glob(os.path.join(gdir, "trials", "*", "stdout.log")) + glob.glob(os.path.join(gdir, "trials", "*", "stderr.log"))):
    for line in open(log, errors="replace"):
        if "initial tensors" in line or "PEFT trains" in line:
            print("  " + line.strip()[:300])
print("%s: %s" % (fam, "all metrics agree" if bad == 0 else "%d disagreements" % bad))
sys.exit(1 if bad else 0)
PYEOF
done
echo "gpu_lm_check: exit $status (work in $W)"
exit $status
