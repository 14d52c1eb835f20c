"""Typed documents, errors and the key layout: what every other package speaks."""
