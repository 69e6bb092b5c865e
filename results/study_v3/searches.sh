#!/usr/bin/env bash
# Study v3, step 3 (PLAN.md): K = 8 independent searches of one setting, each as a user runs
# `discover run --grammar mirror.yaml` today, on its own 3 datasets and its own seed:
# search k uses --seed k --data-seed 600 + 3k (data seeds 600-623, never used before).
#
#   results/study_v3/searches.sh walker2d mixed [K ...]      (default: searches 0-7 in order)
#
# Resumable in pieces: a finished search (final.json) is skipped, an interrupted one is
# resumed from its last checkpoint (`discover run --resume`), so stopping this script loses
# at most the generation under way. About 10-15 min per search alone on the 2-core CPU.
# Each search's console output is kept in results/study_v3/logs/ and its run folder under
# results/study-TASK-SETTING-K/.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v discover >/dev/null || . .venv/bin/activate
[ $# -ge 2 ] || { sed -n 2,11p "$0"; exit 2; }
task=$1 setting=$2
shift 2
mkdir -p results/study_v3/logs
search() {  # search K
  local k=$1 name="study-$task-$setting-$1"
  local log="results/study_v3/logs/$name.log"
  if [ -f "results/$name/final.json" ]; then echo "$name: done"; return; fi
  if [ -f "results/$name/config.json" ]; then
    COLUMNS=100 discover run --resume "$name" 2>&1 | tee -a "$log"
  else
    local extra  # the setting's own flags (e.g. --language sum); on a line of its own, so that set -e sees a failure
    extra=$(python3 results/study_v3/study_settings.py "$task" "$setting")
    # shellcheck disable=SC2086
    COLUMNS=100 discover run --grammar mirror.yaml --task "$task" --setting "$setting" $extra \
      --seed "$k" --data-seed $((600 + 3 * k)) --name "$name" 2>&1 | tee "$log"
  fi
  cp "$log" "results/$name/console.txt"
}
ks=("$@")
[ ${#ks[@]} -gt 0 ] || ks=(0 1 2 3 4 5 6 7)
for k in "${ks[@]}"; do search "$k"; done
