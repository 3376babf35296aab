"""Metrics: one function per per-signal measure (PESQ, STOI, SI-SDR, ...), the composite measures,
DNSMOS, the metric registry the scorer reads, and the statistics (bootstrap CIs, paired tests, rank agreement).

May import: bench.core, bench.protocol, bench.data."""
