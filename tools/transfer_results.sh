#!/usr/bin/env bash
# Remakes the fine-tuning half of course_lib/assets/RESULTS.md (results.json) from the shipped checkpoint:
# for MR and SUBJ, from scratch vs pretrained vs frozen encoder, with all and with 10 % of the training labels,
# three seeds each, the two tasks side by side on one CPU thread each (about 45 minutes on an idle 2-core CPU).
# Every regime gets the same small learning-rate grid, chosen on dev: the first seed runs each rate, the other
# seeds use the best one (`course finetune --lrs`). Same budget for each: 1 epoch with all the labels, 3 with 10 %.
# After tools/export_checkpoint.py of a checkpoint with the same architecture, the from-scratch rows are kept (they never
# read the pretrained weights): `--pretrained-only` remakes just the rows that do (23 minutes).
# The runs are recorded in runs/transfer/results.json, then merged into the shipped results (tools/results_table.py).
#   bash tools/transfer_results.sh [--pretrained-only]
set -euo pipefail
scratch=yes
case "${1:-}" in
  --pretrained-only) scratch=no ;;
  "") ;;
  *) echo "usage: bash tools/transfer_results.sh [--pretrained-only]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
course=${COURSE:-.venv/bin/course}
python=${PYTHON:-.venv/bin/python}
out=runs/transfer
mkdir -p $out
grid() {
  local task=$1
  export OMP_NUM_THREADS=1
  $course finetune "$task" --out $out --init pretrained --lrs 1e-4 3e-4 1e-3 --seeds 0 1 2 --epochs 1
  if [ $scratch = yes ]; then $course finetune "$task" --out $out --init scratch --lrs 1e-4 3e-4 1e-3 --seeds 0 1 2 --epochs 1; fi
  $course finetune "$task" --out $out --init pretrained --train-fraction 0.1 --lrs 1e-4 3e-4 1e-3 --seeds 0 1 2 --epochs 3
  if [ $scratch = yes ]; then
    $course finetune "$task" --out $out --init scratch --train-fraction 0.1 --lrs 1e-4 3e-4 1e-3 --seeds 0 1 2 --epochs 3
  fi
  $course finetune "$task" --out $out --init pretrained --freeze-encoder --lrs 1e-3 3e-3 --seeds 0 1 2 --epochs 1
}
grid mr > $out/finetune-mr.log 2>&1 &
grid subj > $out/finetune-subj.log 2>&1 &
wait
$python tools/results_table.py --merge $out
