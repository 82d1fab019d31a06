"""The Murmur3 ring split into contiguous token ranges that cover every token exactly once."""

from __future__ import annotations

from dataclasses import dataclass

MIN_TOKEN = -(2**63)
MAX_TOKEN = 2**63 - 1


@dataclass(frozen=True, order=True)
class TokenRange:
    """Tokens t with `start < t <= end`; the first range of the ring also holds `start` itself."""

    start: int
    end: int

    @property
    def includes_start(self) -> bool:
        """Only the range starting at the ring's minimum includes its start (`>=`, not `>`)."""
        return self.start == MIN_TOKEN

    def contains(self, token: int) -> bool:
        """Whether `token` belongs to this range."""
        low_ok = token >= self.start if self.includes_start else token > self.start
        return low_ok and token <= self.end

    def to_json(self) -> list[int]:
        """`[start, end]`, as checkpoint lines and result.json store it."""
        return [self.start, self.end]


def split_ring(splits: int) -> tuple[TokenRange, ...]:
    """`splits` contiguous ranges over [-2**63, 2**63-1], sizes differing by at most one token.

    Murmur3 never assigns -2**63 (it normalises it to 2**63-1), but the first range includes it
    anyway so that the union is the whole signed 64-bit interval and nothing wraps around.
    """
    if splits < 1:
        raise ValueError("splits must be at least 1")
    width = MAX_TOKEN - MIN_TOKEN + 1  # 2**64 tokens
    bounds = [MIN_TOKEN + (width * i) // splits for i in range(splits + 1)]
    # Range 0 is [b0, b1 - 1]; range i > 0 is (b_i - 1, b_{i+1} - 1].
    ranges = [TokenRange(MIN_TOKEN, bounds[1] - 1)]
    ranges += [TokenRange(bounds[i] - 1, bounds[i + 1] - 1) for i in range(1, splits)]
    return tuple(ranges)
