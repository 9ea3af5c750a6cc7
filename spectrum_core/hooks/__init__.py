"""Spectrum inside diffusers' sampling loop: the only layer that uses ``diffusers.hooks``.

`families` holds what each transformer class looks like (as data), `spectrum` the hooks and
`apply_spectrum`, `stats` what a run reports."""
