"""The model contract: the `Adapter` base class every model implements and its discovery in baselines/ and
submissions/, model cards, the streaming interface, speed measurements, signal helpers for models, and the
scaffold of a new submission. A model imports `from bench.adapters import Adapter`.

May import: bench.core, bench.protocol, bench.data, bench.metrics."""

from bench.adapters.base import Adapter

__all__ = ["Adapter"]
