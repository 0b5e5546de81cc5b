# Helpers of the pre-flight check and released checkpoints (release.smk): what its rules
# read.
from ldarnet.interop.checkpoint_source import checkpoint_cache
from ldarnet.pipeline.preflight import preflight_rule_params

PREFLIGHT_PARAMS = preflight_rule_params(config, workflow.configfiles)


def checkpoint_download(wildcards):
    """The downloaded release file of a checkpoint model entry."""
    return checkpoint_cache(wildcards.model, config["models"][wildcards.model])


def checkpoint_setting(wildcards, key, default=""):
    """One key of a checkpoint model entry as command-line text ('' when unset)."""
    value = config["models"][wildcards.model].get(key)
    return default if value is None else value
