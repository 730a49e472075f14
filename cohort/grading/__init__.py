"""Grading: the pytest plugin, the results format and the sandboxed run of untrusted pair code."""
