"""Data: tracks and their frozen speaker-disjoint splits (manifests with checksums), balanced sampling,
preparing a track (resampled clean audio, materialized noisy valid/test sets) and reading it back as a
`PreparedTrack`, the test-only sets (cross-corpus, recorded noise) and verifying a local corpus.

May import: bench.core, bench.protocol, bench.corpora."""
