"""Data: corpora and their layouts, tracks and their frozen speaker-disjoint splits (manifests with
checksums), preparing a track (resampled clean audio, materialized noisy valid/test sets) and reading it
back as a `PreparedTrack`, test-only sets, verification and the VCTK download.

May import: bench.core, bench.protocol."""
