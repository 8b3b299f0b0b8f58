"""Trainers: cells, tasks, probes, the one-trial training loop and the record writer."""
