#!/usr/bin/env bash
# Train the `full` presets of the trainable adapters on a lent GPU machine, score them there, and pack
# the result folders and logs into $OUT/results.tgz (checkpoints are too large to bring back).
#
# Runs in a copy of the repository without ../shared and without the project's virtual environment
# (scripts/gpu/setup.sh: dependencies as wheels in .whl/, the prepared track as FLAC in .devdata/).
# Environment: MINUTES (training budget per model, wall clock), MODELS, RUN_ID, STEPS (instead of
# MINUTES, for a smoke test), DEVICE, BENCH_GIT_COMMIT (the commit of the tree, recorded in the results).
# The models train concurrently on the one GPU; scoring runs one model at a time, so that the CPU
# speed measurements (RTF on 1 thread) are not disturbed by another job.
set -uo pipefail
MINUTES=${MINUTES:-4}
MODELS=${MODELS:-"demucs convtasnet sepformer stft-mask-gru"}
RUN_ID=${RUN_ID:-gpu-full-${MINUTES}min}
OUT=${OUT:-/tmp/gpu-out}
DEVICE=${DEVICE:-cuda}
LOGS=runs/gpu-logs/$RUN_ID
mkdir -p "$OUT" "$LOGS"
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 ))s] $*"; }
pack() {  # results so far + logs: refreshed after each step, so a run cut short still brings back what it did
  tar czf "$OUT/results.tgz.tmp" $(ls -d results/vctk-mini/*/"$RUN_ID" 2>/dev/null) \
    $(ls runs/vctk-mini/*/"$RUN_ID"/{log.csv,config.json} 2>/dev/null) "$LOGS" && mv "$OUT/results.tgz.tmp" "$OUT/results.tgz"
}

source scripts/gpu/setup.sh
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, pesq, pystoi, asteroid, speechbrain, soundfile, jsonschema; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" || exit 1
stamp "set up"

budget=(--max-minutes "$MINUTES")
[ -n "${STEPS:-}" ] && budget=(--max-steps "$STEPS")
for m in $MODELS; do
  python3 -m bench run --model "$m" --preset full --device "$DEVICE" "${budget[@]}" --run-id "$RUN_ID" --train-only \
    > "$LOGS/train-$m.log" 2>&1 &
done
wait
stamp "trained"
for m in $MODELS; do
  tail -2 "runs/vctk-mini/$m/$RUN_ID/log.csv" 2>/dev/null | sed "s/^/$m: /"
  grep -iE "error|killed" "$LOGS/train-$m.log" | tail -5
done
pack
for m in $MODELS; do
  [ -f "runs/vctk-mini/$m/$RUN_ID/best.pt" ] || { echo "$m: no checkpoint"; continue; }
  python3 -m bench run --model "$m" --checkpoint "runs/vctk-mini/$m/$RUN_ID/best.pt" --run-id "$RUN_ID" \
    --device "$DEVICE" --no-leaderboard > "$LOGS/score-$m.log" 2>&1
  grep -E "PESQ-WB|SI-SDR|parameters|Error" "$LOGS/score-$m.log"
  stamp "scored $m"
  pack
done
stamp "done"
