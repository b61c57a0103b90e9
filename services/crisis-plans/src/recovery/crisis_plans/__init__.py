"""Joint crisis plans and shared decisions on medication."""
