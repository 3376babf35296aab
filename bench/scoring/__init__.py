"""Scoring: the evaluation suite of a track (which sets, which metrics), scoring a model on one set resumably,
and what it writes: the results folder (its JSON schemas, checks and reading) and the shipped weights.

May import: every package below it (core ... train)."""
