#!/usr/bin/env bash
# The background run of the video sibling: stage vae to VAE_STEPS on both cores (resumes from
# training/checkpoints/video/vae.pt), then the decoder-only stage and the flow stage side by side.
# Every stage resumes from its checkpoint, so this script can be started again at any time.
#   nohup bash training/run_moving_chain.sh > training/train_moving.log 2>&1 &
# It keeps both cores of a 2-core machine busy: run nothing else beside it.
set -u
cd "$(dirname "$0")/.."
. /work/venv/bin/activate 2>/dev/null || true
VAE_STEPS="${VAE_STEPS:-4000}"
python training/train_moving.py --stage vae --steps "$VAE_STEPS" --threads 2
python training/train_moving.py --stage dec >> training/train_moving_dec.log 2>&1 &  # beside the flow stage
exec python training/train_moving.py --stage flow
