"""Generation as a library: presets, validated requests, the runner that loads and calls a pipeline,
output files and their metadata, fidelity metrics and the method grid. The CLI is a thin layer over it."""
