#!/usr/bin/env bash
# Remakes the fine-tuning half of course_lib/assets/RESULTS.md (results.json) from the shipped checkpoint:
# for MR and SUBJ, from scratch vs pretrained vs frozen encoder, with all and with 10 % of the training labels.
# Each configuration picks its learning rate on dev with seed 0 (from the grid given), then runs seeds 1 and 2
# at that rate. The two tasks run side by side, one CPU thread each.
#   bash scripts/transfer_results.sh          (about an hour on a 2-core CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
course=${COURSE:-.venv/bin/course}
grid() {
  local task=$1
  export OMP_NUM_THREADS=1
  $course finetune "$task" --init pretrained --lrs 1e-4 3e-4 --seeds 0 1 2 --epochs 2
  $course finetune "$task" --init scratch --lrs 1e-4 3e-4 --seeds 0 1 2 --epochs 2
  $course finetune "$task" --init pretrained --freeze-encoder --lrs 1e-3 3e-3 --seeds 0 1 2 --epochs 2
  $course finetune "$task" --init pretrained --train-fraction 0.1 --lrs 1e-4 3e-4 --seeds 0 1 2 --epochs 8
  $course finetune "$task" --init scratch --train-fraction 0.1 --lrs 1e-4 3e-4 --seeds 0 1 2 --epochs 8
}
grid mr > runs/finetune-mr.log 2>&1 &
grid subj > runs/finetune-subj.log 2>&1 &
wait
