"""Where rows are written: the engine's storage boundary.

- `protocol`: `Store`, what the engine needs of storage (the log, entities,
  the outbox, timers, dead letters, cursors); the engine types against it.
- `rows`, `commands`: the plain records a store takes and returns.
- `sqlite`: `SQLiteStore`, the first implementation, in parts: `sqlite_base`
  (connections), `sqlite_batch` (one commit), `sqlite_reads`, `sqlite_outbox`
  and `outbox_sql` (claims and operators' actions), `migrate` and `schema`
  (the core schema and plugins' migrations), `writer` and `process_writer`
  (the single writer), `checkpoint`, `lock`, `identity`, `readonly`,
  `supervisor`, `errors`.
- `postgres`: `PostgresStore`, on PostgreSQL, in parts: `postgres_base`
  (connections), `postgres_batch` (one commit), `postgres_reads`,
  `postgres_outbox`, `postgres_read_models`, `postgres_sql` (filters),
  `postgres_schema`, `postgres_lock` (one writer).
- `sql_reads`: the reads both stores speak alike; `urls`: a store, its lock
  and its vault's keys from a path or a ``postgresql://`` URL.

`engine.testing.store_conformance` is the suite any `Store` must pass.
"""
