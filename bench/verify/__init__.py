"""Verification: `bench verify` (shipped outputs and weights against their hashes, re-scoring,
re-enhancement, what a run says about itself derived from its files), `bench reproduce` (retraining a run),
`bench compare` (paired comparison of two runs) and the adapter contract behind `bench check`.

May import: every package below it (core ... scoring)."""
