"""The embedded default: the real workflow on moto, with no AWS account (DESIGN 5)."""
