"""Scoring: the evaluation suite of a track (which sets, which metrics) and scoring a model on one set,
resumably, into a results folder.

May import: every package below it (core ... results)."""
