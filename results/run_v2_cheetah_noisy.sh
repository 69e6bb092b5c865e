#!/usr/bin/env bash
# Headline v2, HalfCheetah noisy-label transfer targets: the Hopper noisy-label winners (32 and
# 64 new candidates per generation) on HalfCheetah with the same label-noise rate, a task no
# search ran on (held-out datasets 100-104 x 10 seeds, every zoo loss at its default and
# tuned constants, tuned there). About 65 min per noise rate on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f results/v2-transfer-half_cheetah-noisy02/results.json ] || \
  discover bench --task half_cheetah --setting noisy --eps 0.2 --datasets 5 --seeds 10 --tune \
    --include v2-hopper-noisy02-p64:1 --include v2-hopper-noisy02:1 \
    --name v2-transfer-half_cheetah-noisy02
[ -f results/v2-transfer-half_cheetah-noisy04/results.json ] || \
  discover bench --task half_cheetah --setting noisy --eps 0.4 --datasets 5 --seeds 10 --tune \
    --include v2-hopper-noisy04-p64:1 --include v2-hopper-noisy04:1 \
    --name v2-transfer-half_cheetah-noisy04
