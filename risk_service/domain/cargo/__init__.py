"""Advance cargo information: cargo reports (manifests, entry summaries) screened before loading and arrival."""
