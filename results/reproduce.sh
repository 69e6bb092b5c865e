#!/usr/bin/env bash
# Regenerates every committed result under results/, in order (hours on a 2-core CPU; each
# step is independent once the ones before it exist). Run from the repository root with the
# project installed (pip install -e .). Behaviour policies are committed; to retrain them:
#   discover data policies --task hopper       (SAC, 400k steps)
#   discover data policies --task walker2d     (SAC, 300k steps)
#   discover data policies --task half_cheetah (SAC, 150k steps)
set -euo pipefail

# Issue 3: the zoo on Hopper, 5 seeds, at the zoo's constants and at tuned constants (these, and
# the issue-5 searches, ran before the default became 16 evaluation episodes).
for s in clean noisy mixed; do
  discover bench --task hopper --setting "$s" --eps 0.3 --seeds 5 --tune --episodes 4 --name "bench-hopper-$s"
done

# Issue 4: the default search (the README's main job), from an empty dataset cache.
MPO_DISCOVER_CACHE=$(mktemp -d) discover run --grammar mirror.yaml --name default-run

# Issue 5: searches per setting (with elite re-evaluation, the default), and a wider one. They
# ran before `sft` joined the zoo (generation 0 seeds the zoo), so a rerun takes another path.
discover run --grammar mirror.yaml --episodes 4 --final-top 8 --setting noisy --eps 0.2 --generations 15 --name hopper-noisy02
discover run --grammar mirror.yaml --episodes 4 --final-top 8 --setting noisy --eps 0.4 --generations 15 --name hopper-noisy04
discover run --grammar mirror.yaml --episodes 4 --final-top 8 --setting mixed --generations 15 --name hopper-mixed
discover run --grammar mirror.yaml --episodes 4 --final-top 8 --setting mixed --population 48 --generations 20 --reevaluate 8 \
  --name hopper-mixed-wide
# The eps-0.2 search rerun with today's defaults (16 episodes, sft in the zoo), and its comparison:
discover run --grammar mirror.yaml --final-top 8 --setting noisy --eps 0.2 --generations 15 --name hopper-noisy02-ep16
# The same first two searches without re-evaluation (the winner's curse it fixes):
#   discover run --grammar mirror.yaml --episodes 4 --reevaluate 0 --setting noisy --eps 0.2 --generations 15 --name hopper-noisy02-noreeval
#   discover run --grammar mirror.yaml --episodes 4 --reevaluate 0 --setting noisy --eps 0.4 --generations 15 --name hopper-noisy04-noreeval

# Comparisons on fresh seeds: on Hopper, 10 seeds, tuned baselines, every discovered loss
# and (--ablate-t) each scheduled one with t frozen; on Walker2d and HalfCheetah with the
# same settings, 5 seeds at the zoo's constants (the transfer matrix).
INCLUDE=(--include hopper-noisy02 --include hopper-noisy04 --include hopper-mixed --include hopper-mixed-wide)
discover bench --task hopper --setting noisy --eps 0.2 --seeds 10 --tune --ablate-t "${INCLUDE[@]}" --name cmp-hopper-noisy02
discover bench --task hopper --setting noisy --eps 0.4 --seeds 10 --tune --ablate-t "${INCLUDE[@]}" --name cmp-hopper-noisy04
discover bench --task hopper --setting mixed --seeds 10 --tune --ablate-t "${INCLUDE[@]}" --name cmp-hopper-mixed
discover bench --task hopper --setting noisy --eps 0.3 --seeds 10 --tune --ablate-t --include default-run \
  --include hopper-noisy02 --name cmp-hopper-noisy03
discover bench --task hopper --setting noisy --eps 0.2 --seeds 10 --tune --ablate-t --include hopper-noisy02-ep16 \
  --include hopper-noisy02 --name cmp-hopper-noisy02-ep16
for task in walker2d half_cheetah; do
  discover bench --task "$task" --setting noisy --eps 0.2 --seeds 5 "${INCLUDE[@]}" --name "cmp-$task-noisy02"
  discover bench --task "$task" --setting noisy --eps 0.4 --seeds 5 "${INCLUDE[@]}" --name "cmp-$task-noisy04"
  discover bench --task "$task" --setting mixed --seeds 5 "${INCLUDE[@]}" --name "cmp-$task-mixed"
done

# Benchmarks quoted in the README (outputs under results/benchmarks/).
mkdir -p results/benchmarks
python benchmarks/interpreter.py > results/benchmarks/interpreter.txt
python benchmarks/rollouts.py --mjx > results/benchmarks/rollouts.txt
python benchmarks/inner_loop.py --task hopper > results/benchmarks/inner_loop.txt
python benchmarks/search.py > results/benchmarks/search.txt
python benchmarks/fitness_noise.py > results/benchmarks/fitness_noise.txt

discover report --spec results/report.yaml --output results/REPORT-v1-2026-11-27.md

# v2 (2026-11-28): the suite, the headline searches and benches, the token task, the report.
bash results/run_v2_benches.sh
bash results/run_v2_calibration.sh
bash results/run_v2_headline.sh
bash results/run_v2_lm.sh
bash results/run_v2_walker.sh
bash results/run_v2_richer.sh   # 2026-12-01: Hopper mixed with 64 per generation; HalfCheetah mixed transfer
bash results/run_v2_noisy_richer.sh   # 2026-12-01: Hopper noisy (eps 0.2) with 64 per generation; Walker2d noisy transfer
bash results/run_v2_noisy04_richer.sh   # 2026-12-01: Hopper noisy (eps 0.4) with 64 per generation; Walker2d noisy (eps 0.4) transfer
bash results/run_v2_walker_richer.sh   # 2026-12-01/02: Walker2d mixed with 64 per generation, and its bench
bash results/run_v2_cheetah_noisy.sh   # 2026-12-01: HalfCheetah noisy (eps 0.2 and 0.4) transfer targets
discover report --spec results/headline_v2.yaml --output results/REPORT-v2-2026-12-02.md --readme results/NARRATIVE_v2.md
python benchmarks/ray_overhead.py > results/benchmarks/ray_overhead.txt
# Successive halving (2026-11-28): the default command again, its cost and its selection accuracy.
MPO_DISCOVER_CACHE=$(mktemp -d) discover run --grammar mirror.yaml --name default-run-v3
python benchmarks/search.py > results/benchmarks/search_v2.txt
python benchmarks/halving.py
