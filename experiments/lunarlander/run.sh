#!/usr/bin/env bash
# PPO+DSP against dense PPO on LunarLander-v3 (gymnasium box2d, through the host bridge), 2M steps,
# 3 seeds per row. The schedule is round 6's winner (sweep_round6.md): output importance, schedule
# threshold keeping 9 % of each actor layer, pruned early (0.05–0.35 of training) so the compact
# actor has 65 % of training to recover; small λ; the critic stays dense (only the actor is
# deployed). Rows: dense and DSP in one program; DSP with the penalty switched off once the mask is
# final (reg_end = prune_end); random structured pruning to the same size (METHOD.md §7).
# Then every compact actor is re-evaluated over 50 episodes, greedy and sampled (evaluate.py).
# Usage (from the repository root): bash experiments/lunarlander/run.sh   [about 50 min on 2 CPU cores]
# Writes runs/ (run directories; checkpoints are not committed), results_table.md, results_eval.md.
set -euo pipefail
cd "$(dirname "$0")"
DSPJAX=${DSPJAX:-dspjax}
SEEDS=${SEEDS:-3}
PPO=(--env LunarLander-v3 --algo ppo --steps 2000000 --num-envs 8 --num-steps 256 --minibatches 32
     --gamma 0.999 --gae-lambda 0.98 --lr 3e-4 --eval-episodes 20 --seeds "$SEEDS" --no-progress)
# λ 2.56e-3 per iteration of 4 x 32 optimiser steps: 2e-5 per step, as these runs were made (dspjax 0.1)
DSP=(--prune-critic off --importance output --threshold-rule schedule --k-final 0.09 --lam 2.56e-3
     --prune-start 0.05 --prune-end 0.35)
rm -rf runs && mkdir -p runs

$DSPJAX train "${PPO[@]}" "${DSP[@]}" --reg-end 1 --sweep method=dense,dsp --out runs/lam_to_end
$DSPJAX train "${PPO[@]}" "${DSP[@]}" --reg-end 0.35 --out runs/lam_off_after_pruning
$DSPJAX train "${PPO[@]}" "${DSP[@]}" --method random --out runs/random

python ../summarize.py runs/lam_to_end runs/lam_off_after_pruning runs/random \
  --reproduce "bash experiments/lunarlander/run.sh" > results_table.md
python evaluate.py runs/lam_to_end runs/lam_off_after_pruning runs/random --episodes 50 \
  --reproduce "bash experiments/lunarlander/run.sh" > results_eval.md
cat results_table.md results_eval.md
