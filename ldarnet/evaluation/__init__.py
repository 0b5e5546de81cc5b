"""Downstream evaluation (spec section 4): task data, fine-tuning, folds, metrics, selection."""
