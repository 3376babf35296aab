"""The noising protocol: clean speech -> STFT -> seeded manipulations -> iSTFT -> noisy speech, every
parameter in a frozen spec file beside this module, identified by its name and the SHA-256 of its canonical
JSON. An utterance's noise depends only on (spec, utterance id, global seed, stream). Reference: docs/protocol.md.

May import: bench.core."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from bench.core.errors import BenchError
from bench.protocol.manipulations import MANIPULATIONS, Context, keyword_params, param_problems

SPEC_DIR = Path(__file__).resolve().parent
DEFAULT_PROTOCOL = "stft-v1"
FROZEN_STREAM = "frozen"
ONLY = ".only-"  # <parent>.only-<op>: a derived protocol with one manipulation of its parent


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def available_protocols() -> list[str]:
    return sorted(p.stem for p in SPEC_DIR.glob("*.json"))


@dataclass(frozen=True)
class Protocol:
    spec: dict = field(repr=False)
    sha256: str

    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def version(self) -> int:
        return int(self.spec["version"])

    @property
    def sample_rate(self) -> int:
        return int(self.spec["sample_rate"])

    @property
    def global_seed(self) -> int:
        return int(self.spec["seeding"]["global_seed"])

    @classmethod
    def load(cls, name: str = DEFAULT_PROTOCOL) -> "Protocol":
        return _load(name)

    @classmethod
    def from_spec(cls, spec: dict) -> "Protocol":
        _validate_spec(spec)
        return cls(spec=spec, sha256=hashlib.sha256(canonical_json(spec)).hexdigest())

    def record(self) -> dict:
        """What results store about the protocol (a derived one adds ``derived_from``)."""
        rec = {"name": self.name, "id": self.spec["id"], "version": self.version,
               "sha256": self.sha256, "global_seed": self.global_seed}
        if "derived_from" in self.spec:
            rec["derived_from"] = dict(self.spec["derived_from"])
        return rec

    @property
    def derived(self) -> bool:
        return "derived_from" in self.spec

    def only(self, op: str | int) -> "Protocol":
        """This protocol with only manipulation `op` (name or index), drawing what it draws here."""
        if self.derived:
            parent = self.spec["derived_from"]["name"]
            raise BenchError(f"protocol {self.name} is already derived; derive from {parent}")
        ops = [m["op"] for m in self.spec["manipulations"]]
        i = op if isinstance(op, int) else (ops.index(op) if op in ops else -1)
        if not 0 <= i < len(ops) or ops.count(ops[i]) != 1:
            raise BenchError(f"protocol {self.name} has no single manipulation {op!r}; it has: {', '.join(ops)}")
        spec = {k: v for k, v in self.spec.items() if k not in ("manipulations", "description")}
        spec.update(
            name=f"{self.name}{ONLY}{ops[i]}",
            description=f"Diagnostic: manipulation {i} ({ops[i]}) of {self.name} alone, with the random draws it has "
                        f"in {self.name}.",
            derived_from={"name": self.name, "sha256": self.sha256, "keep": ops[i], "index": i},
            seeding={**self.spec["seeding"], "name": self.name, "spawn_keys": [i]},
            manipulations=[self.spec["manipulations"][i]],
        )
        return Protocol.from_spec(spec)

    def diagnostics(self) -> list["Protocol"]:
        """One derived protocol per manipulation, in the order of the spec."""
        return [self.only(i) for i in range(len(self.spec["manipulations"]))]

    # ---- randomness -------------------------------------------------------------------------
    def generators(self, utt_id: str, stream: str = FROZEN_STREAM, seed: int | None = None):
        """One generator per manipulation, from sha256(name | utterance id | seed | stream)."""
        seed = self.global_seed if seed is None else int(seed)
        name = self.spec["seeding"].get("name", self.name)  # a derived protocol seeds as its parent
        key = "\x1f".join([name, str(utt_id), str(seed), str(stream)]).encode()
        entropy = int.from_bytes(hashlib.sha256(key).digest()[:16], "little")
        keys = self.spec["seeding"].get("spawn_keys", range(len(self.spec["manipulations"])))
        return [np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy, spawn_key=(int(i),))))
                for i in keys]

    # ---- STFT -------------------------------------------------------------------------------
    def _stft_options(self) -> dict:
        import torch

        st = self.spec["stft"]
        window = torch.hann_window(st["win_length"], periodic=True, dtype=torch.float64)
        return {"n_fft": st["n_fft"], "hop_length": st["hop_length"], "win_length": st["win_length"], "window": window,
                "center": st["center"]}

    def stft(self, x: np.ndarray) -> np.ndarray:
        import torch

        return torch.stft(torch.from_numpy(np.asarray(x, dtype=np.float64)), **self._stft_options(),
                          pad_mode=self.spec["stft"]["pad_mode"], return_complex=True).numpy()

    def istft(self, X: np.ndarray, length: int) -> np.ndarray:
        import torch

        return torch.istft(torch.from_numpy(X), **self._stft_options(), length=length).numpy()

    # ---- the protocol -----------------------------------------------------------------------
    def apply(self, clean: np.ndarray, utt_id: str, *, stream: str = FROZEN_STREAM,
              seed: int | None = None) -> np.ndarray:
        """Noisy version of one clean 16 kHz utterance (float32, same length, clipped to +-1)."""
        clean = np.asarray(clean)
        if clean.ndim != 1:
            raise BenchError(f"protocol {self.name}: expected one mono utterance (time,), got shape {clean.shape}")
        n = clean.shape[0]
        st = self.spec["stft"]
        if n <= st["n_fft"] // 2:
            raise BenchError(f"protocol {self.name}: utterance {utt_id!r} has {n} samples; "
                             f"needs more than {st['n_fft'] // 2}")
        X = self.stft(clean)
        ctx = Context(sample_rate=self.sample_rate, n_fft=st["n_fft"], hop_length=st["hop_length"],
                      clean_power=float(np.mean(np.abs(X) ** 2)))
        for step, rng in zip(self.spec["manipulations"], self.generators(utt_id, stream, seed)):
            params = {k: v for k, v in step.items() if k != "op"}
            X = MANIPULATIONS[step["op"]](X, rng, ctx, **params)
        y = self.istft(X, n)
        clip = float(self.spec["output"]["clip"])
        return np.clip(y, -clip, clip).astype(np.float32)


def _validate_spec(spec: dict) -> None:
    for key in ("name", "id", "version", "sample_rate", "stft", "seeding", "manipulations", "output"):
        if key not in spec:
            raise BenchError(f"protocol spec is missing the field {key!r}")
    base = f"{spec['id']}-v{spec['version']}"
    if "derived_from" in spec:
        d = spec["derived_from"]
        if spec["name"] != f"{base}{ONLY}{d.get('keep')}" or d.get("name") != base:
            raise BenchError(f"derived protocol spec name {spec['name']!r} must be '<parent>{ONLY}<op>'")
        if len(spec["manipulations"]) != 1 or len(spec["seeding"].get("spawn_keys", [])) != 1:
            raise BenchError(f"derived protocol {spec['name']}: needs one manipulation and one spawn key")
    elif spec["name"] != base:
        raise BenchError(f"protocol spec name {spec['name']!r} must be '<id>-v<version>'")
    for i, step in enumerate(spec["manipulations"]):
        if step.get("op") not in MANIPULATIONS:
            raise BenchError(f"protocol {spec['name']}: manipulation {i} has unknown op {step.get('op')!r}; "
                             f"known: {sorted(MANIPULATIONS)}")
        # parameters have no defaults: catch a missing or misspelled one here, not as a TypeError mid-prepare
        expected = keyword_params(MANIPULATIONS[step["op"]])
        if problems := param_problems(expected, step):
            raise BenchError(f"protocol {spec['name']}: manipulation {i} ({step['op']}): {problems}"
                             f"; expected exactly: {', '.join(sorted(expected))}")


@lru_cache(maxsize=None)
def _load(name: str) -> Protocol:
    if ONLY in name:
        parent, op = name.split(ONLY, 1)
        return _load(parent).only(op)
    path = SPEC_DIR / f"{name}.json"
    if not path.exists():
        raise BenchError(f"unknown protocol {name!r}", hint=f"available: {', '.join(available_protocols())}")
    spec = json.loads(path.read_text())
    if spec.get("name") != name:
        raise BenchError(f"{path}: spec name {spec.get('name')!r} does not match its file name")
    return Protocol.from_spec(spec)
