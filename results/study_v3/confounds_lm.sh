#!/usr/bin/env bash
# Study v3, step 1 (issue 25): does the token task's fixed recipe decide the ranking?
# Tuned DPO, tuned DiscoPOP (each tuned at the bench's own learning rate and steps, on the
# tuning dataset), the committed token winner (v2-lm-mixed rank 1) and its t = 0 / t = 1
# forms (--ablate-t), at learning rates {3, 6, 12, 24}e-4 with 200 steps, then 400 steps.
#
# Data seeds 300-304 are reserved for these confound checks: no committed bench used them,
# and the study's searches, tuning and held-out benches must not use them either.
# 5 datasets x 4 seeds each. On the 2-core CPU: about 8-11 min per 200-step bench (half of
# it tuning) and twice that at 400 steps (the datasets are built once). Each bench resumes
# from results/NAME/partial/ when run again; finished benches are skipped. Arguments
# STEPS:LR (e.g. 400:3e-4) run only those benches.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v discover >/dev/null || . .venv/bin/activate
mkdir -p results/study_v3/logs
bench() {  # bench STEPS LR
  local name="v3-confound-lm-s$1-lr$2"
  if [ -f "results/$name/results.json" ]; then echo "$name: done"; return; fi
  COLUMNS=100 discover bench --task lm --setting mixed --losses dpo,discopop --tune \
    --include v2-lm-mixed:1 --ablate-t --datasets 5 --seeds 4 --data-seed 300 \
    --steps "$1" --lr "$2" --name "$name" 2>&1 | tee "results/study_v3/logs/$name.log"
  cp "results/study_v3/logs/$name.log" "results/$name/console.txt"
}
# With arguments STEPS:LR ..., only those benches (in that order); without, all of them.
if [ $# -gt 0 ]; then
  for b in "$@"; do bench "${b%%:*}" "${b##*:}"; done
  exit 0
fi
for lr in 3e-4 6e-4 12e-4 24e-4; do bench 200 "$lr"; done
for lr in 3e-4 12e-4 6e-4 24e-4; do bench 400 "$lr"; done
