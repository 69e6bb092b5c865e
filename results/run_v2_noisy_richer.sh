#!/usr/bin/env bash
# Headline v2, richer search on noisy labels: a mirror.yaml search on Hopper noisy (eps 0.2)
# with twice the population (64 new candidates per generation, successive halving, the v2
# defaults otherwise), then its winner on the held-out Hopper noisy datasets 100-104 x 10
# seeds against every zoo loss at its default and tuned constants (t frozen at 0 and 1,
# effective form), beside the 32-per-generation noisy winner (searched before halving) and
# the mixed-quality 64-per-generation winner (transfer); then both eps 0.2 winners on Walker2d
# noisy (eps 0.2), a transfer target no search ran on (held-out datasets 100-104 x 10 seeds,
# the zoo tuned there). About 40 + 45 + 50 min on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f results/v2-hopper-noisy02-p64/final.json ] || \
  discover run --grammar mirror.yaml --task hopper --setting noisy --eps 0.2 --population 64 \
    --name v2-hopper-noisy02-p64
[ -f results/v2-headline-hopper-noisy02-p64/results.json ] || \
  discover bench --task hopper --setting noisy --eps 0.2 --datasets 5 --seeds 10 --tune --ablate-t --effective \
    --include v2-hopper-noisy02-p64:1 --include v2-hopper-noisy02:1 --include v2-hopper-mixed-p64:1 \
    --name v2-headline-hopper-noisy02-p64
[ -f results/v2-transfer-walker2d-noisy02/results.json ] || \
  discover bench --task walker2d --setting noisy --eps 0.2 --datasets 5 --seeds 10 --tune \
    --include v2-hopper-noisy02-p64:1 --include v2-hopper-noisy02:1 \
    --name v2-transfer-walker2d-noisy02
