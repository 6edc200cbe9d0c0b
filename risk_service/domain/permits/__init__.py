"""Single window permits: the registry agencies feed, cross-checks at scoring time, and the quantity ledger."""
