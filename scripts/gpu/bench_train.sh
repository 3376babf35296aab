#!/usr/bin/env bash
# Training throughput on a lent GPU machine (issue 12): scripts/bench_train.py (model only vs end to end with
# the numpy and the torch data paths, one run per batch size) at batch 16/32/64, bf16, `demucs --preset full`;
# then model only, ours vs the reference at the same config (56 sinc zero crossings), with the torch
# profiler's top operators of both (where the gap is); then, with more than one GPU, a data-parallel
# smoke run (`bench run --nproc N` and torchrun). Also: the profile of our end-to-end step at batch 64 and the
# number of host-device synchronizations in it (--sync-debug; there should be none). Everything goes to
# $OUT (*.md: the tables; *.log: stderr).
#
# Same set-up as full_runs.sh (scripts/gpu/setup.sh: dependencies as wheels in .whl/, the prepared track as
# FLAC in .devdata/). The reference, facebookresearch/denoiser, is never part of the repository: put a
# checkout in the git-ignored .reference/denoiser (e.g. `mkdir -p .reference/denoiser && git --git-dir=<a
# clone>/.git archive HEAD denoiser | tar -x -C .reference/denoiser`) and carry it to the machine (the run
# tool's `carry`); without it the reference modes are skipped.
#   BATCHES="16 32 64" STEPS=30 ./scripts/gpu/bench_train.sh      (about 4 minutes on one H200)
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
BATCHES=${BATCHES:-"16 32 64"}
STEPS=${STEPS:-30}
MODEL=${MODEL:-demucs}
REFERENCE=${REFERENCE:-.reference/denoiser}
mkdir -p "$OUT"
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 ))s] $*"; }
source scripts/gpu/setup.sh > /dev/null
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
ref=()
[ -f "$REFERENCE/denoiser/demucs.py" ] && ref=(--reference "$REFERENCE")
stamp "set up; reference: ${ref[*]:-none}"
for b in $BATCHES; do
  python3 scripts/bench_train.py --model "$MODEL" --preset full --device cuda --batch "$b" --bf16 --steps "$STEPS" \
    "${ref[@]}" > "$OUT/bench-train-b$b.md" 2> "$OUT/bench-train-b$b.log"
  stamp "batch $b: exit $?"
  grep -E "^\||x$" "$OUT/bench-train-b$b.md"
done
python3 scripts/bench_train.py --model "$MODEL" --preset full --device cuda --batch 64 --bf16 --steps 10 --rounds 1 \
  --modes model,torch --profile --sync-debug > "$OUT/bench-train-b64-profile.md" 2> "$OUT/bench-train-b64-profile.log"
stamp "batch 64 profile (ours, end to end) and host-device synchronizations: exit $?"
grep -E "^\||synchronizations|^- " "$OUT/bench-train-b64-profile.md"
if [ ${#ref[@]} -gt 0 ]; then
  python3 scripts/bench_train.py --model "$MODEL" --preset full --device cuda --batch 64 --bf16 --steps "$STEPS" \
    --set sinc_zeros=56 --modes model,reference --profile "${ref[@]}" > "$OUT/bench-train-b64-z56-profile.md" \
    2> "$OUT/bench-train-b64-z56-profile.log"
  stamp "same config as the reference + profile: exit $?"
  grep -E "^\||x$" "$OUT/bench-train-b64-z56-profile.md"
fi
n=$(nvidia-smi -L | wc -l)
if [ "$n" -gt 1 ]; then
  python3 -m bench run --model "$MODEL" --preset full --device cuda --nproc "$n" --max-steps 40 --run-id ddp-nproc \
    --train-set valid_every=20 --train-only > "$OUT/ddp-nproc.log" 2>&1
  stamp "bench run --nproc $n: exit $?"
  torchrun --nproc-per-node "$n" -m bench run --model "$MODEL" --preset full --device cuda --max-steps 40 \
    --run-id ddp-torchrun --train-set valid_every=20 --train-only > "$OUT/ddp-torchrun.log" 2>&1
  stamp "torchrun --nproc-per-node $n: exit $?"
  for d in runs/vctk-mini/"$MODEL"/ddp-*; do
    cp "$d/log.csv" "$OUT/$(basename "$d")-log.csv" && tail -1 "$d/log.csv" | sed "s|^|$d: |"
  done
else
  stamp "one GPU: no data-parallel run"
fi
