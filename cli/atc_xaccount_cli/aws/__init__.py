"""Operator commands against a deployed atc-xaccount (standard credential chain)."""
