"""Tooling for an MLAB-style bootcamp: build the pair template, grade pushes, run the cohort."""

__version__ = "0.1.0"
