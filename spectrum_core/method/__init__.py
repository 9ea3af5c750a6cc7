"""The method, in pure torch: the knobs (`config`), which steps run the network (`schedule`) and how a
skipped step's features are predicted (`forecasters`). Nothing here imports diffusers, so every piece is
testable on synthetic curves."""
