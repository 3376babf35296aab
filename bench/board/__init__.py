"""The board: which results folders become rows (the row rule, marks, retiring), the summary with its rank
groups, the markdown leaderboard and the listening page with its media.

May import: every package below it (core ... verify)."""
