# Helpers of the pretraining (pretrain.smk): what its rules and `rule all` read.
from ldarnet.pipeline.cluster import torch_launcher


def ablation_budget_file(wildcards):
    """An ablation arm trains the steps of its FLOPs budget; other models their config's."""
    if wildcards.model in ABLATION["arms"]:
        return f"results/ablation/{wildcards.model}/seed{wildcards.seed}/budget.json"
    return []


def pretrain_launcher(wildcards):
    """torchrun for several GPUs (one process per GPU, its share of threads), else ldarnet."""
    return torch_launcher(COMPUTE["pretrain"], PYTHON)


def pretrain_targets():
    """results/pretrain/{model}/seed{seed}/model.safetensors of every configured run."""
    p = config["pretrain"]
    models = list(dict.fromkeys([*p["models"], *ABLATION["arms"]]))
    return [f"results/pretrain/{model}/seed{seed}/model.safetensors"
            for model in models for seed in p["seeds"]]
