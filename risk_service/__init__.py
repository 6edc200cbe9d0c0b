"""Customs risk screening service: scores declarations with rules and ML models over gRPC."""
