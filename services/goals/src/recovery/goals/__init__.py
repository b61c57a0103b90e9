"""Personal life goals service."""
