#!/usr/bin/env bash
# Headline v2 on Walker2d, mixed quality: a mirror.yaml search under the v2 defaults
# (successive halving, fitness over data seeds 0-2), then its best loss and the Hopper
# mixed winner (transfer) on the held-out datasets 100-104 x 10 seeds against every zoo
# loss at its default and tuned constants, with t frozen at 0 and 1 and the effective
# forms. On the 2-core CPU: about 15 min for the search (datasets included), 35 for the bench.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f results/v2-walker2d-mixed/final.json ] || \
  discover run --grammar mirror.yaml --task walker2d --setting mixed --name v2-walker2d-mixed
discover bench --task walker2d --setting mixed --datasets 5 --seeds 10 --tune --ablate-t --effective \
  --include v2-walker2d-mixed:1 --include v2-hopper-mixed:1 --name v2-headline-walker2d-mixed
