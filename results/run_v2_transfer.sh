#!/usr/bin/env bash
# Transfer and pruned forms on Hopper (after run_v2_headline.sh and run_v2_lm.sh): every
# winner on every Hopper setting, with each winner's effective form (terms under 1% of
# the gradient norm removed), on the held-out datasets and seeds of the headline benches;
# the report pairs these rows with each setting's best baseline. About 3 min per bench.
set -euo pipefail
cd "$(dirname "$0")/.."
winners=(--include v2-hopper-mixed:1 --include v2-hopper-noisy02:1 --include v2-hopper-noisy04:1
         --include v2-lm-mixed:1)
common=(--task hopper --datasets 5 --seeds 10 --losses sft --effective "${winners[@]}")
discover bench "${common[@]}" --setting mixed --name v2-transfer-hopper-mixed
discover bench "${common[@]}" --setting noisy --eps 0.2 --name v2-transfer-hopper-noisy02
discover bench "${common[@]}" --setting noisy --eps 0.4 --name v2-transfer-hopper-noisy04
discover report --spec results/headline_v2.yaml --output results/REPORT-v2-2026-12-02.md --readme README.md
