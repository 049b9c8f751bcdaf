"""The applications service: an invitation's 60 days, the application, the decision, the COPR, landing."""
