#!/usr/bin/env bash
# Headline v2, richer search and HalfCheetah transfer: a mirror.yaml search on Hopper mixed
# with twice the population (64 new candidates per generation, successive halving), its
# winner on the held-out Hopper datasets 100-104 x 10 seeds against every zoo loss at its
# default and tuned constants (t frozen at 0 and 1, effective form) beside the 32-per-
# generation winner and the Walker2d mixed winner (transfer), then the three mixed-quality
# winners on HalfCheetah mixed (held-out datasets 100-104 x 10 seeds, zoo tuned there).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f results/v2-hopper-mixed-p64/final.json ] || \
  discover run --grammar mirror.yaml --task hopper --setting mixed --population 64 --name v2-hopper-mixed-p64
[ -f results/v2-headline-hopper-mixed-p64/results.json ] || \
  discover bench --task hopper --setting mixed --datasets 5 --seeds 10 --tune --ablate-t --effective \
    --include v2-hopper-mixed-p64:1 --include v2-hopper-mixed:1 --include v2-walker2d-mixed:1 \
    --name v2-headline-hopper-mixed-p64
[ -f results/v2-transfer-half_cheetah-mixed/results.json ] || \
  discover bench --task half_cheetah --setting mixed --datasets 5 --seeds 10 --tune \
    --include v2-hopper-mixed-p64:1 --include v2-hopper-mixed:1 --include v2-walker2d-mixed:1 \
    --name v2-transfer-half_cheetah-mixed
