#!/usr/bin/env bash
# Headline v2, richer search on heavily noisy labels: a mirror.yaml search on Hopper noisy
# (eps 0.4) with twice the population (64 new candidates per generation, successive halving,
# the v2 defaults otherwise), then its winner on the held-out Hopper noisy (eps 0.4) datasets
# 100-104 x 10 seeds against every zoo loss at its default and tuned constants (t frozen at 0
# and 1, effective form), beside the 32-per-generation eps 0.4 winner and the eps 0.2
# 64-per-generation winner; then both eps 0.4 winners on Walker2d noisy (eps 0.4), a transfer
# target no search ran on (held-out datasets 100-104 x 10 seeds, the zoo tuned there).
# About 17 + 25 + 45 min on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f results/v2-hopper-noisy04-p64/final.json ] || \
  discover run --grammar mirror.yaml --task hopper --setting noisy --eps 0.4 --population 64 \
    --name v2-hopper-noisy04-p64
[ -f results/v2-headline-hopper-noisy04-p64/results.json ] || \
  discover bench --task hopper --setting noisy --eps 0.4 --datasets 5 --seeds 10 --tune --ablate-t --effective \
    --include v2-hopper-noisy04-p64:1 --include v2-hopper-noisy04:1 --include v2-hopper-noisy02-p64:1 \
    --name v2-headline-hopper-noisy04-p64
[ -f results/v2-transfer-walker2d-noisy04/results.json ] || \
  discover bench --task walker2d --setting noisy --eps 0.4 --datasets 5 --seeds 10 --tune \
    --include v2-hopper-noisy04-p64:1 --include v2-hopper-noisy04:1 \
    --name v2-transfer-walker2d-noisy04
