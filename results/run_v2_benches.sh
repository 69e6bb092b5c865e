#!/usr/bin/env bash
# Suite v2 benches on Hopper: held-out datasets 100-104 x 10 training seeds, the v2
# defaults (expert-continuation labels, same-policy pairs, warmup + linear decay, EMA
# readout). The clean bench also tunes every baseline's constants (on dataset 50, 4 seeds).
# On the 2-core CPU: about 26 min for the clean bench, 11 min for each other one.
set -euo pipefail
cd "$(dirname "$0")/.."
common=(--task hopper --datasets 5 --seeds 10)
discover bench "${common[@]}" --setting clean --tune --name v2-bench-hopper-clean
discover bench "${common[@]}" --setting noisy --eps 0.5 --name v2-bench-hopper-eps05
discover bench "${common[@]}" --setting mixed --name v2-bench-hopper-mixed
discover bench "${common[@]}" --setting noisy --eps 0.2 --name v2-bench-hopper-noisy02
discover bench "${common[@]}" --setting shuffled --name v2-bench-hopper-shuffled
discover bench "${common[@]}" --setting noisy --eps 0.4 --name v2-bench-hopper-noisy04
discover report --suite results/suite_v2.yaml --output results/SUITE_V2.md
