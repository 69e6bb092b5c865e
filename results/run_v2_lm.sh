#!/usr/bin/env bash
# The token task (--task lm), mixed-quality data: a search with mirror.yaml under the v2
# defaults (fitness over data seeds 0-2), then its winner, the zoo (at its constants and
# tuned on dataset 50) and the Hopper winners on the held-out token datasets 100-104 x 10
# seeds. On the 2-core CPU: about 10 min for the search, 25 min for the bench.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f results/v2-lm-mixed/final.json ] || discover run --grammar mirror.yaml --task lm --setting mixed --name v2-lm-mixed
discover bench --task lm --setting mixed --datasets 5 --seeds 10 --tune --ablate-t --effective \
  --include v2-lm-mixed:1 --include v2-hopper-mixed:1 --include v2-hopper-noisy02:1 --include v2-hopper-noisy04:1 \
  --name v2-headline-lm-mixed
