"""Support of the Snakemake workflow: what its rules import, and nothing of the science.

:mod:`config_check` (cross-field checks of a workflow config, after its JSON schema),
:mod:`cluster` (where each rule runs: GPU/CPU resources from the config, SLURM job-state
guards) and :mod:`preflight` (every remote input of a config resolved before a run).
"""
