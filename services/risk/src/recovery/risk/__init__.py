"""The risk service: risk co-assessments, safety plans and positive risk-taking decisions."""
