"""Corpora: where the speech corpora are (the data root), how each is laid out on disk, and the resumable,
checksummed VCTK download with its safe archive extraction.

May import: bench.core."""
