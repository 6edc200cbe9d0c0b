"""Transport-free domain: declarations, validation, rules, selection policy and screening."""
