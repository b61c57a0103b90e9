"""The GraphQL gateway: one API over goals, crisis-plans, risk, training and workforce."""
