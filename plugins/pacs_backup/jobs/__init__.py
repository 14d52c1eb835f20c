"""Scheduled work: snapshots, drills, external drives, forecasts and the health word."""
