"""Operator and developer tooling for atc-xaccount: the CLI and the embedded emulator.

Not shipped in the Lambda layer.
"""
