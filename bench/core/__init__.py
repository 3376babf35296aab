"""Foundation: errors with hints, the console, names that become folders, locks, worker pools, the
environment record, audio I/O and atomic file writes.

May import: nothing of bench but the root package (`bench.REPO_ROOT`, `bench.SAMPLE_RATE`)."""
