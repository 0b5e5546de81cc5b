"""LDARNet model: pure-PyTorch reference implementation with optional CUDA fast paths."""
