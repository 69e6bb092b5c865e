#!/usr/bin/env bash
# Calibration of beta on clean Hopper labels (issue: the suite's DPO family ends training
# with beta*D about 0.3, in its linear regime): DPO and cDPO at beta 0.1 (the zoo's), 0.3,
# 1 and 3 against sft, on the suite's held-out datasets 100-104 x 10 training seeds, v2
# defaults. On the 2-core CPU: about 6 min.
set -euo pipefail
cd "$(dirname "$0")/.."
discover bench --task hopper --setting clean --datasets 5 --seeds 10 \
  --losses sft,dpo,dpo@beta=0.3,dpo@beta=1,dpo@beta=3,cdpo,cdpo@beta=0.3,cdpo@beta=1,cdpo@beta=3 \
  --name v2-calibration-hopper-clean
