"""The (token, key) merge of one range: missing on either side, differing, token collisions."""

from __future__ import annotations

from astrachaos.reconcile.merge import Finding, MergeCounts, Row, merge


def findings(source: list[Row], target: list[Row]) -> tuple[list[tuple[Finding, Row]], MergeCounts]:
    counts = MergeCounts()
    found = [(m.finding, m.key) for m in merge(iter(source), iter(target), 3, counts)]
    return found, counts


def test_equal_ranges_report_nothing() -> None:
    rows = [(1, "a", 1, "x"), (1, "a", 2, "y"), (5, "b", 1, "z")]
    found, counts = findings(rows, list(rows))
    assert found == [] and counts.equal == 3 and counts.source_rows == counts.target_rows == 3


def test_missing_on_each_side_and_differing_values() -> None:
    source = [(1, "a", 1, "x"), (1, "a", 2, "y"), (5, "b", 1, "z")]
    target = [(1, "a", 2, "CHANGED"), (7, "c", 1, "w")]
    found, counts = findings(source, target)
    assert found == [
        (Finding.MISSING_IN_TARGET, ("a", 1)),
        (Finding.DIFFERING, ("a", 2)),
        (Finding.MISSING_IN_TARGET, ("b", 1)),
        (Finding.MISSING_IN_SOURCE, ("c", 1)),
    ]
    assert (counts.source_rows, counts.target_rows, counts.equal) == (3, 2, 0)


def test_two_partitions_sharing_a_token_are_matched_by_key() -> None:
    source = [(3, "p", 1, "x"), (3, "q", 1, "y"), (4, "r", 1, "z")]
    target = [(3, "q", 1, "y"), (3, "p", 1, "x"), (4, "r", 1, "z")]  # other key order at token 3
    found, counts = findings(source, target)
    assert found == [] and counts.equal == 3


def test_nan_equals_nan() -> None:
    nan = float("nan")
    found, _ = findings([(1, "a", 1, nan)], [(1, "a", 1, float("nan"))])
    assert found == []
