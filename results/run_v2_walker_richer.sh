#!/usr/bin/env bash
# Headline v2, richer search on Walker2d mixed quality: a mirror.yaml search with twice the
# population (64 new candidates per generation, successive halving, the v2 defaults
# otherwise), then its winner on the held-out Walker2d mixed datasets 100-104 x 10 seeds
# against every zoo loss at its default and tuned constants (t frozen at 0 and 1, effective
# form), beside the 32-per-generation Walker2d winner, the two Hopper mixed winners and the
# token-task winner (transfer). About 30 + 41 min on 2 CPU cores (2026-12-02).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f results/v2-walker2d-mixed-p64/final.json ] || \
  discover run --grammar mirror.yaml --task walker2d --setting mixed --population 64 --name v2-walker2d-mixed-p64
[ -f results/v2-headline-walker2d-mixed-p64/results.json ] || \
  discover bench --task walker2d --setting mixed --datasets 5 --seeds 10 --tune --ablate-t --effective \
    --include v2-walker2d-mixed-p64:1 --include v2-walker2d-mixed:1 --include v2-hopper-mixed-p64:1 \
    --include v2-hopper-mixed:1 --include v2-lm-mixed:1 --name v2-headline-walker2d-mixed-p64
