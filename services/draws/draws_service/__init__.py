"""The draws service: rounds of invitations, planned (dry run), held and published."""
