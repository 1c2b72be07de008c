"""Benchmarks: honest speed figures for the pipeline and serving (run by hand or `make bench`)."""
