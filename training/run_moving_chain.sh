#!/usr/bin/env bash
# The background run of the video sibling: stage vae to VAE_STEPS (resumes from
# training/checkpoints/video/vae.pt), pre-encode the clip set, then flow until killed.
# Every stage resumes from its checkpoint, so this script can be started again at any time.
#   nohup bash training/run_moving_chain.sh > training/train_moving.log 2>&1 &
# One CPU thread per process; on a 2-core machine run at most one such chain beside the image run.
set -u
cd "$(dirname "$0")/.."
. /work/venv/bin/activate 2>/dev/null || true
VAE_STEPS="${VAE_STEPS:-4000}"
python training/train_moving.py --stage vae --steps "$VAE_STEPS"
exec python training/train_moving.py --stage flow
