"""Probes: measurements taken during a trial, each writing its own table."""
