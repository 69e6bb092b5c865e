#!/usr/bin/env bash
# Study v3, step 1 (issue 25): Walker2d mixed at two learning rates. DPO over the Tsallis
# mirror (the MPO prototype; the Walker2d winners act as ascent on its margin) across
# alpha's range [0.05, 2], DPO (its alpha -> 0 limit), sft_to_dpo, apo_zero and the v2
# Walker2d winner, at their default constants, 200 steps, learning rates 3e-4 and 6e-4.
#
# Data seeds 300-304 are reserved for confound checks (see confounds_lm.sh): no committed
# bench used them, and the study must not. 5 datasets x 4 seeds. On the 2-core CPU: the
# datasets take a few minutes to build once, then about 3 min per bench. Finished benches
# are skipped; an interrupted one resumes from results/NAME/partial/.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v discover >/dev/null || . .venv/bin/activate
mkdir -p results/study_v3/logs
LOSSES="dpo,dpo_tsallis@alpha=0.05,dpo_tsallis@alpha=0.2,dpo_tsallis,dpo_tsallis@alpha=1,dpo_tsallis@alpha=2"
LOSSES="$LOSSES,sft_to_dpo,apo_zero"
bench() {  # bench STEPS LR
  local name="v3-confound-walker2d-s$1-lr$2"
  if [ -f "results/$name/results.json" ]; then echo "$name: done"; return; fi
  COLUMNS=100 discover bench --task walker2d --setting mixed --losses "$LOSSES" \
    --include v2-walker2d-mixed:1 --datasets 5 --seeds 4 --data-seed 300 \
    --steps "$1" --lr "$2" --name "$name" 2>&1 | tee "results/study_v3/logs/$name.log"
  cp "results/study_v3/logs/$name.log" "results/$name/console.txt"
}
# With arguments STEPS:LR ..., only those benches (in that order); without, the first two.
# The budget check of the next session (CONFOUNDS.md, "Recommendation"):
#   results/study_v3/confounds_walker.sh 200:12e-4 400:6e-4 200:24e-4 400:12e-4
if [ $# -gt 0 ]; then
  for b in "$@"; do bench "${b%%:*}" "${b##*:}"; done
  exit 0
fi
bench 200 3e-4
bench 200 6e-4
