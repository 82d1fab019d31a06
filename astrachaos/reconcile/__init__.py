"""Reconcile: compare an expected set of rows (a run's ledger, a key file, another table) with a table.

Semantics (the reference for `astrachaos reconcile`):

- Token ranges: `--splits N` contiguous ranges over [-2**63, 2**63-1]; the first is
  `token >= -2**63 AND token <= e0`, the others `token > s AND token <= e`, so the whole Murmur3
  ring (its wrap-around included) is read exactly once. Ranges are read `--concurrency` at a time.
- Merge: both tables' rows of a range are walked in (token, clustering) order. Memory per
  worker: one token's rows (one partition; a few on a token collision) plus the driver's page;
  the findings themselves are kept (they are the output).
- Compared: every regular and static column (or `--columns`); values equal as Python compares
  the driver's values (NaN equals NaN; decimals compare numerically, 1.0 == 1.00).
- `--writetime-tolerance-ms T` (off by default): writetimes are compared too. A column whose
  values are equal but whose WRITETIMEs differ by more than T ms is reported in `differing`
  with both writetimes; within T it is equal. A non-frozen collection compares the newest
  writetime of its elements. A value difference is always reported, whatever the writetimes.
- Re-check and `--grace-s G`: every key found different is re-read by key on both sides after
  its range. Equal by then → `rechecked_equal`. Otherwise, when the newest writetime of the
  row's cells on either side is at or after (scan start − G), it is `in_flight` (listed,
  not a difference, exit code unaffected); else it is reported. A row deleted during the scan
  shows no writetime (tombstones are not readable) and is reported.
- Exit: 0 equal, 1 differences, 5 a range failed 3 attempts (inconclusive), 4 environment.
- Repair (`--repair`, writes only with `--yes`): rows missing on one side are copied from the
  other, one INSERT per distinct (WRITETIME, TTL) of their cells, so a newer write or delete on
  the receiving side still wins. Never deletes, never touches differing rows. See `repair.py`
  for collections (Cassandra 5.0 returns per-element writetimes; TTL is not carried over).
"""
