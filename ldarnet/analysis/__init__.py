"""Analyses of what a trained LDARNet's learned tokenizer does to real DNA.

The modules here read models, genomes and annotations and produce result files
(boundary tracks, profiles, statistics); none of them trains a model.
"""
