"""Results as data: the results folder of one scoring (its JSON schemas, checks and reading) and the shipped
weights format (safetensors).

May import: bench.core, bench.protocol, bench.data, bench.metrics, bench.adapters, bench.train."""
