"""Switchable, seeded faults for the replay server.

Grammar of the CLI string parsed by :meth:`FaultSpec.parse` (comma-separated
``key=value`` items, whitespace ignored, each key at most once, ``""`` = no faults)::

    429=<rate>          answer 429 + Retry-After                      rate in [0, 1]
    5xx=<rate>          answer 500 / 502 / 503 (rotating)              rate in [0, 1]
    slow=<rate>         sleep ``slow_s`` then answer normally          rate in [0, 1]
    malformed=<rate>    answer 200 with a truncated JSON body          rate in [0, 1]
    missing=<rate>      answer 200, first item of a list lacks "id"    rate in [0, 1]
    cursor=<rate>       a keyset page repeats the cursor it was given  rate in [0, 1]
    retry_after=<int>   seconds in the Retry-After header (default 1)  >= 0
    slow_s=<float>      delay of a slow answer (default 5)             >= 0
    down=<p>[+<p>…]     prefixes that always answer 503                p in gamma|clob|binance
    book_down=<t>[+<t>…] CLOB /book of these token ids answers 503    t a token id
    history_down=<t>[+<t>…] CLOB /prices-history of these tokens: 503 t a token id
    only=<p>[+<p>…]     restrict the random faults to these prefixes   (default: all)
    seed=<int>          RNG seed (default 0)

The rates must sum to at most 1: each request draws one uniform number and
falls into at most one fault. Example:
``429=0.05,5xx=0.05,slow=0.02,malformed=0.02,retry_after=1,slow_s=12,down=clob,seed=3``.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

PREFIXES: tuple[str, ...] = ("gamma", "clob", "binance")
FAULT_KINDS: tuple[str, ...] = (
    "429",
    "5xx",
    "slow",
    "malformed",
    "missing",
    "cursor",
    "down",
    "book_down",
    "history_down",
)
_RATE_KEYS = {
    "429": "rate_429",
    "5xx": "rate_5xx",
    "slow": "rate_slow",
    "malformed": "rate_malformed",
    "missing": "rate_missing",
    "cursor": "rate_cursor",
}
_ALL_KEYS = (
    *_RATE_KEYS,
    "retry_after",
    "slow_s",
    "down",
    "book_down",
    "history_down",
    "only",
    "seed",
)
_5XX_ROTATION = (500, 502, 503)


@dataclass(frozen=True)
class FaultSpec:
    """Which faults the replay server injects, and how often (see module docstring)."""

    rate_429: float = 0.0
    rate_5xx: float = 0.0
    rate_slow: float = 0.0
    rate_malformed: float = 0.0
    rate_missing: float = 0.0
    rate_cursor: float = 0.0
    retry_after: int = 1
    slow_s: float = 5.0
    down: frozenset[str] = field(default_factory=frozenset)
    # One token's book failing while the rest of the CLOB answers (live edges' tests).
    book_down: frozenset[str] = field(default_factory=frozenset)
    history_down: frozenset[str] = field(default_factory=frozenset)
    only: frozenset[str] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for key, attr in _RATE_KEYS.items():
            rate = getattr(self, attr)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"fault rate {key}={rate} is outside [0, 1]")
        if self.total_rate > 1.0 + 1e-9:
            raise ValueError(f"fault rates sum to {self.total_rate:g}, more than 1")
        if self.retry_after < 0:
            raise ValueError("retry_after must be >= 0")
        if self.slow_s < 0:
            raise ValueError("slow_s must be >= 0")
        for name, prefixes in (("down", self.down), ("only", self.only or frozenset())):
            unknown = sorted(set(prefixes) - set(PREFIXES))
            if unknown:
                raise ValueError(
                    f"{name}: unknown prefix {', '.join(unknown)} (expected {'|'.join(PREFIXES)})"
                )

    @property
    def total_rate(self) -> float:
        """Probability that a request gets one of the random faults."""
        return sum(getattr(self, attr) for attr in _RATE_KEYS.values())

    @property
    def is_active(self) -> bool:
        """True when any fault can happen."""
        return (
            self.total_rate > 0
            or bool(self.down)
            or bool(self.book_down)
            or bool(self.history_down)
        )

    @classmethod
    def parse(cls, text: str | None) -> FaultSpec:
        """Parse the CLI grammar; raises ValueError naming the offending item."""
        values: dict[str, object] = {}
        seen: set[str] = set()
        for raw_item in (text or "").split(","):
            item = raw_item.strip()
            if not item:
                continue
            key, sep, value = (part.strip() for part in item.partition("="))
            if not sep or not value:
                raise ValueError(f"fault item {item!r} is not key=value")
            if key not in _ALL_KEYS:
                raise ValueError(
                    f"unknown fault key {key!r} (expected one of {', '.join(_ALL_KEYS)})"
                )
            if key in seen:
                raise ValueError(f"fault key {key!r} given twice")
            seen.add(key)
            if key in _RATE_KEYS:
                values[_RATE_KEYS[key]] = _parse_number(key, value, float)
            elif key == "retry_after":
                values[key] = _parse_number(key, value, int)
            elif key == "slow_s":
                values[key] = _parse_number(key, value, float)
            elif key == "seed":
                values[key] = _parse_number(key, value, int)
            elif key in ("book_down", "history_down"):
                values[key] = frozenset(t.strip() for t in value.split("+") if t.strip())
            else:
                values[key] = _parse_prefixes(key, value)
        return cls(**values)  # type: ignore[arg-type]

    def __str__(self) -> str:
        """The canonical CLI string (``FaultSpec.parse(str(spec)) == spec``)."""
        items = [
            f"{key}={getattr(self, attr):g}"
            for key, attr in _RATE_KEYS.items()
            if getattr(self, attr)
        ]
        items += [f"retry_after={self.retry_after}", f"slow_s={self.slow_s:g}"]
        if self.down:
            items.append("down=" + "+".join(p for p in PREFIXES if p in self.down))
        if self.book_down:
            items.append("book_down=" + "+".join(sorted(self.book_down)))
        if self.history_down:
            items.append("history_down=" + "+".join(sorted(self.history_down)))
        if self.only is not None:
            items.append("only=" + "+".join(p for p in PREFIXES if p in self.only))
        items.append(f"seed={self.seed}")
        return ",".join(items)


def _parse_number(key: str, value: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(value)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise ValueError(f"fault key {key!r}: {value!r} is not {expected}") from None


def _parse_prefixes(key: str, value: str) -> frozenset[str]:
    prefixes = [p.strip() for p in value.split("+")]
    unknown = [p for p in prefixes if p not in PREFIXES]
    if unknown:
        raise ValueError(
            f"fault key {key!r}: unknown prefix {', '.join(map(repr, unknown))} "
            f"(expected {'|'.join(PREFIXES)} joined by '+')"
        )
    return frozenset(prefixes)


@dataclass(frozen=True)
class Fault:
    """One injected fault: ``kind`` in FAULT_KINDS; ``status`` for 429/5xx/down."""

    kind: str
    status: int | None = None


class FaultInjector:
    """Draws faults for requests, deterministically for a seed and request order."""

    def __init__(self, spec: FaultSpec | None = None) -> None:
        self.spec = spec or FaultSpec()
        self._lock = threading.Lock()
        self._rng = random.Random(self.spec.seed)
        self._rotation = 0

    def decide(self, prefix: str) -> Fault | None:
        """The fault for the next request under ``prefix`` (gamma|clob|binance), if any.

        A down prefix always fails and draws nothing; every other eligible request
        draws exactly one number, so the sequence only depends on request order.
        """
        spec = self.spec
        if prefix in spec.down:
            return Fault("down", 503)
        if spec.total_rate <= 0 or (spec.only is not None and prefix not in spec.only):
            return None
        with self._lock:
            draw = self._rng.random()
            threshold = 0.0
            for kind, attr in _RATE_KEYS.items():
                rate = getattr(spec, attr)
                threshold += rate
                if draw < threshold:
                    if kind == "429":
                        return Fault("429", 429)
                    if kind == "5xx":
                        status = _5XX_ROTATION[self._rotation % len(_5XX_ROTATION)]
                        self._rotation += 1
                        return Fault("5xx", status)
                    return Fault(kind)
        return None

    def reset(self) -> None:
        """Restart the random sequence from the seed."""
        with self._lock:
            self._rng = random.Random(self.spec.seed)
            self._rotation = 0
