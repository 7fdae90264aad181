"""Workflow steps: one function per state of the state machines in `statemachine/`."""
