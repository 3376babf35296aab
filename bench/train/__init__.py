"""Training: the options table, the run configuration, batches as a pure function of (seed, step), losses,
checkpoints, adversarial and data-parallel training, and the one trainer.

May import: bench.core, bench.protocol, bench.data, bench.metrics, bench.adapters."""
