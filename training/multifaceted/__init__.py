"""Stated-preference training data: a Multifaceted Collection (Janus, SPEC 2.4) built for any
instructions, on the engine (`aloe-train multifaceted-data`). See docs/multifaceted-data.md."""
