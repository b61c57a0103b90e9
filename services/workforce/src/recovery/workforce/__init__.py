"""The workforce service: teams, staff, care delivered, culture and implementation readiness."""
