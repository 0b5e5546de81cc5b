"""The FLOPs-matched ablation: learned vs fixed-grid vs random boundaries (claim C3)."""
