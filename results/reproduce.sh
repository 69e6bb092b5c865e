#!/usr/bin/env bash
# Regenerates every committed result under results/, in order (hours on a 2-core CPU; each
# step is independent once the ones before it exist). Run from the repository root with the
# project installed (pip install -e .). Behaviour policies are committed; to retrain them:
#   discover data policies --task hopper       (SAC, 400k steps)
#   discover data policies --task walker2d     (SAC, 300k steps)
#   discover data policies --task half_cheetah (SAC, 300k steps)
set -euo pipefail

# Issue 3: the zoo on Hopper, 5 seeds, at the zoo's constants and at tuned constants.
for s in clean noisy mixed; do
  discover bench --task hopper --setting "$s" --eps 0.3 --seeds 5 --tune --name "bench-hopper-$s"
done

# Issue 4: the default search (the README's main job).
discover run --grammar mirror.yaml --name default-run

# Issue 5: searches per setting, and a wider one.
discover run --grammar mirror.yaml --setting noisy --eps 0.2 --generations 15 --name hopper-noisy02
discover run --grammar mirror.yaml --setting noisy --eps 0.4 --generations 15 --name hopper-noisy04
discover run --grammar mirror.yaml --setting mixed --generations 15 --name hopper-mixed
discover run --grammar mirror.yaml --setting mixed --population 48 --generations 20 --name hopper-mixed-wide

# Comparisons on fresh seeds (10), with tuned baselines and every discovered loss, on each
# setting and on Walker2d and HalfCheetah with the same settings (the transfer matrix).
INCLUDE=(--include hopper-noisy02 --include hopper-noisy04 --include hopper-mixed --include hopper-mixed-wide)
for task in hopper walker2d half_cheetah; do
  discover bench --task "$task" --setting noisy --eps 0.2 --seeds 10 --tune "${INCLUDE[@]}" --name "cmp-$task-noisy02"
  discover bench --task "$task" --setting noisy --eps 0.4 --seeds 10 --tune "${INCLUDE[@]}" --name "cmp-$task-noisy04"
  discover bench --task "$task" --setting mixed --seeds 10 --tune "${INCLUDE[@]}" --name "cmp-$task-mixed"
done

discover report --spec results/report.yaml --output results/REPORT.md
