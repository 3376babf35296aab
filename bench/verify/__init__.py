"""Verification: `bench verify` (shipped outputs and weights against their hashes, re-scoring,
re-enhancement), `bench reproduce` (retraining a run) and the adapter contract behind `bench check`.

May import: every package below it (core ... scoring)."""
