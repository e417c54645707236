#!/usr/bin/env bash
# The DFDC experiments of README "DFDC results", one after another (2 CPU
# cores: about 10-25 min each). Each run's log goes to logs/<name>.log.
# Usage: bash scripts/dfdc_queue.sh NAME... (names from the table below), or all.
set -uo pipefail
cd "$(dirname "$0")/.."
D=${DFDC:-../shared/data/dfdc_faces}
COMMON="--data $D --batch-size 64 --lr 3e-3 --epochs 12 --patience 5"
declare -A EXP=(
  [dfdc64_a025]="--size 64"
  [dfdc96_a025]="--size 96"
  [dfdc128_a025]="--size 128"
  [dfdc64_a025_strong]="--size 64 --augment strong"
  [dfdc64_a050]="--size 64 --alpha 0.5"
  [dfdc64_a025_fftlbp]="--size 64 --channels rgb+fft+lbp"
)
names=("$@")
[ "${names[0]:-all}" = all ] && names=(dfdc64_a025 dfdc96_a025 dfdc128_a025 dfdc64_a025_strong dfdc64_a050 dfdc64_a025_fftlbp)
mkdir -p logs
for n in "${names[@]}"; do
  [ -f "runs/$n/model.pt" ] && { echo "skip $n (trained)"; continue; }
  echo "$(date +%T) start $n: tinyfake train $COMMON ${EXP[$n]} --name $n"
  .venv/bin/tinyfake train $COMMON ${EXP[$n]} --name "$n" > "logs/$n.log" 2>&1
  echo "$(date +%T) done $n (exit $?)"; tail -3 "logs/$n.log"
done
