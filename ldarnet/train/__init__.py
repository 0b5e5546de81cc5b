"""Training: pretraining loop, schedules, checkpoints, distributed set-up."""
