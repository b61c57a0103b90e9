"""The training service: the Recovery Education Centre."""
