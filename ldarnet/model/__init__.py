"""LDARNet: the network (:mod:`ldarnet.model.network`) and the services around it.

Services: the configuration (:mod:`config`, :mod:`layout`), the weight format the model
owns (:mod:`weights`) and loading a trained model (:mod:`pretrained`), FLOPs and parameter
accounting (:mod:`flops`, :mod:`summary`, :mod:`param_groups`), the pretraining objective
(:mod:`objective`), pooling (:mod:`pooling`), precision guards (:mod:`precision`) and the
compute kernels (:mod:`kernels`: pure PyTorch reference, :mod:`kernels_cuda`: mamba-ssm,
causal-conv1d, flash-attn when present). The model imports nothing from training,
evaluation or analysis; of data it uses the token vocabulary only.
"""
