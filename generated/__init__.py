# DO NOT EDIT: `make generate` (tools/generate.py) writes this package from contracts/.
"""Code generated from contracts/: API models (api), event models (events), routes."""
