"""Generation as a library: presets, validated requests (`request`), the runner that loads and calls a
pipeline (`runner`), batches (`batch`), output files and their metadata (`outputs`, `media`), fidelity
metrics, the method grid, calibration (`calibrate`) and the profiles it writes and requests match
(`profiles`), and torchrun/accelerate process groups (`distributed`). The CLI is a thin layer over it."""
