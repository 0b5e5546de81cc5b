"""The fine-tuning protocol (spec section 4): classifier, fine-tuning, folds, metrics,
configuration selection. The tasks it runs on are :mod:`ldarnet.tasks`."""
