"""Technician commands (scripts/*) and their exit codes."""
