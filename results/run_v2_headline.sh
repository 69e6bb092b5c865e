#!/usr/bin/env bash
# Headline v2 (Hopper): for each setting, a search with mirror.yaml under the v2 defaults
# (fitness over data seeds 0-2, 3 training seeds per candidate), then a bench of its best
# loss on the held-out datasets 100-104 x 10 seeds against every zoo loss at its default
# and its tuned constants (tuned on dataset 50), with t frozen at 0 and 1 for a winner that
# uses training progress. On the 2-core CPU: about 12 min per search, 30 min per bench.
set -euo pipefail
cd "$(dirname "$0")/.."
bench=(--task hopper --datasets 5 --seeds 10 --tune --ablate-t)
run_and_bench() {  # NAME then the setting's options
    local name=$1; shift
    [ -f "results/v2-$name/final.json" ] || discover run --grammar mirror.yaml --task hopper "$@" --name "v2-$name"
    discover bench "${bench[@]}" "$@" --include "v2-$name:1" --name "v2-headline-$name"
}
run_and_bench hopper-mixed --setting mixed
run_and_bench hopper-noisy02 --setting noisy --eps 0.2
run_and_bench hopper-noisy04 --setting noisy --eps 0.4
