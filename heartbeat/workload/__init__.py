"""The protected workload's process: launcher, start, stop, health."""
