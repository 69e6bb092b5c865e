#!/usr/bin/env bash
# Suite v2 benches on Hopper (held-out datasets 100-104 x 10 seeds, the v2 defaults:
# expert-continuation labels, warmup + linear decay, EMA readout). About 75 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
common=(--task hopper --datasets 5 --seeds 10)
discover bench "${common[@]}" --setting clean --tune --name v2-bench-hopper-clean
discover bench "${common[@]}" --setting noisy --eps 0.5 --name v2-bench-hopper-eps05
discover bench "${common[@]}" --setting mixed --tune --name v2-bench-hopper-mixed
discover bench "${common[@]}" --setting noisy --eps 0.2 --tune --name v2-bench-hopper-noisy02
discover bench "${common[@]}" --setting shuffled --name v2-bench-hopper-shuffled
discover bench "${common[@]}" --setting noisy --eps 0.4 --tune --name v2-bench-hopper-noisy04
