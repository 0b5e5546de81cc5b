"""Data handling: tokenizer, genome access, MLM masking, downstream tasks."""
