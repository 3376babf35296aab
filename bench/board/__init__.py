"""The board: which results folders become rows (the row rule, marks, retiring), the markdown leaderboard,
the listening page and its media, and paired comparisons of runs.

May import: every package below it (core ... verify)."""
