"""Orchestrator: sweep specs, the named sweeps, Ray Tune glue and the `sweep` CLI."""
