"""Data: the genome (download, validation, splits, tiling into shards), readers of FASTA,
BED and annotations, the token vocabulary, MLM masking and batching."""
