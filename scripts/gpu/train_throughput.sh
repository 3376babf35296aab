#!/usr/bin/env bash
# Training throughput of one model's `full` preset on a GPU, eager vs torch.compile: STEPS optimizer
# steps each (validation every STEPS/3), steps/s read from the training logs between validations, so
# start-up and compilation are excluded. Same set-up as full_runs.sh (wheels in .whl/, track in .devdata/).
#   MODEL=demucs STEPS=90 ./scripts/gpu/train_throughput.sh
set -uo pipefail
MODEL=${MODEL:-demucs}
STEPS=${STEPS:-90}
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
source scripts/gpu/setup.sh > /dev/null
for compile in false true; do
  id=throughput-compile-$compile
  t0=$(date +%s)
  python3 -m bench run --model "$MODEL" --preset full --device cuda --max-steps "$STEPS" --run-id "$id" --train-only \
    --train-set compile=$compile valid_every=$((STEPS / 3)) > "$OUT/$id.log" 2>&1
  echo "compile=$compile: exit $? after $(( $(date +%s) - t0 )) s"
  cp "runs/vctk-mini/$MODEL/$id/log.csv" "$OUT/$id.csv" 2>/dev/null
  python3 - "runs/vctk-mini/$MODEL/$id/log.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for a, b in zip(rows, rows[1:]):
    s = (int(b["step"]) - int(a["step"])) / (float(b["elapsed_s"]) - float(a["elapsed_s"]))
    print(f"  steps {a['step']}-{b['step']}: {s:.2f} steps/s (incl. one validation)")
PY
  tail -3 "$OUT/$id.log" | grep -iE "error" || true
done
