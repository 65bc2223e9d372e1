#!/usr/bin/env bash
# Usage: bash experiments/found_size/rule_study/train.sh NAME [dspjax train options...]
# One run, pinned to CPU core 1, into experiments/found_size/rule_study/runs/NAME; logs its command and time.
set -euo pipefail
cd "$(dirname "$0")"
name=$1; shift
start=$(date +%s)
PYTHONPATH=../../.. taskset -c 1 ${PYTHON:-python} -m dspjax train --no-progress --out "runs/$name" "$@" > "runs/$name.log" 2>&1
echo "$name | $(( $(date +%s) - start )) s | dspjax train $*" >> runs/commands.txt
