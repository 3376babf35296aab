"""Orchestration: `bench run` (prepare -> train -> weights -> score the suite -> results -> board),
`bench enhance` (a board model on your own audio) and the noise examples.

May import: every package below it (core ... board)."""
