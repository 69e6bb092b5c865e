#!/usr/bin/env bash
# Study v3, step 1 (issue 25): is the token task with --language sum hard enough for the
# study? The reverse language saturates at a sufficient budget (CONFOUNDS.md), so the token
# setting joins the plan only once the best hand-designed loss at its best recipe stays well
# below the ceiling. Ten zoo losses at their default constants, mixed data, the recipes of
# the tuning grid's corners and beyond it, on confound data seeds 300-302 x 2 seeds.
# About 1-2 min per bench on the 2-core CPU; finished benches are skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v discover >/dev/null || . .venv/bin/activate
mkdir -p results/study_v3/logs
LOSSES="dpo,sft,dpo_tsallis,apo_zero,cdpo,simpo,ipo,ipo_norm,discopop,sft_to_dpo"
bench() {  # bench STEPS LR
  local name="v3-confound-lmsum-s$1-lr$2"
  if [ -f "results/$name/results.json" ]; then echo "$name: done"; return; fi
  COLUMNS=120 discover bench --task lm --language sum --setting mixed --losses "$LOSSES" \
    --datasets 3 --seeds 2 --data-seed 300 --steps "$1" --lr "$2" --name "$name" 2>&1 \
    | tee "results/study_v3/logs/$name.log"
  cp "results/study_v3/logs/$name.log" "results/$name/console.txt"
}
for b in "${@:-200:3e-4 200:12e-4 400:24e-4 400:48e-4}"; do
  for r in $b; do bench "${r%%:*}" "${r##*:}"; done
done
