"""LDARNet: hierarchical DNA language model with learned, dynamic tokenization."""

__version__ = "0.1.0"
