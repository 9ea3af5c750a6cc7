"""The method, in pure torch: the knobs (`config`), which steps run the network (`schedule`) and how a
skipped step's features are predicted (`forecasters`), and the exact choice of real steps under a
calibrated cost (`optimise`). Nothing here imports diffusers, so every piece is
testable on synthetic curves."""
