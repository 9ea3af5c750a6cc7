#!/usr/bin/env bash
# The background run of a session after the AE exists: flow for a while, a decoder-only fine-tune
# (the flow model does not depend on the decoder), then flow until the session ends.
# Every stage resumes from training/checkpoints/, so this script can be started again at any time.
#   nohup bash training/run_chain.sh > training/train.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
. /work/venv/bin/activate 2>/dev/null || true
FLOW_MIN="${FLOW_MIN:-45}"
DEC_STEPS="${DEC_STEPS:-600}"
python training/train_shapes.py --stage flow --max-minutes "$FLOW_MIN"
python training/train_shapes.py --stage dec --steps "$DEC_STEPS"
exec python training/train_shapes.py --stage flow
