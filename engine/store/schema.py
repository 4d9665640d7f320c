"""The SQLite schema and its migrations.

Migrations are numbered and applied in order inside one transaction each; the
``schema_version`` table says how far a database file has come, so an older
file is upgraded on open and a newer one is refused.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: the event log, entities, outbox, timers, dead letters, duplicates.
    """
    CREATE TABLE events (
        seq          INTEGER PRIMARY KEY,
        event_id     TEXT    NOT NULL UNIQUE,
        type         TEXT    NOT NULL,
        source       TEXT    NOT NULL,
        entity       TEXT    NOT NULL,
        chart        TEXT    NOT NULL,
        occurred_at  REAL,
        received_at  REAL    NOT NULL,
        payload      TEXT    NOT NULL,
        outcome      TEXT    NOT NULL,
        from_state   TEXT,
        to_state     TEXT,
        reason       TEXT
    );
    CREATE INDEX events_by_entity ON events (entity, seq);

    CREATE TABLE entities (
        key          TEXT    PRIMARY KEY,
        kind         TEXT    NOT NULL,
        chart        TEXT    NOT NULL,
        state        TEXT    NOT NULL,
        data         TEXT    NOT NULL,
        version      INTEGER NOT NULL,
        last_seq     INTEGER NOT NULL,
        updated_at   REAL    NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX entities_by_chart_state ON entities (chart, state);

    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        event_seq       INTEGER NOT NULL,
        entity          TEXT    NOT NULL,
        command         TEXT    NOT NULL,
        payload         TEXT    NOT NULL,
        idempotency_key TEXT    NOT NULL UNIQUE,
        status          TEXT    NOT NULL DEFAULT 'pending',
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        created_at      REAL    NOT NULL,
        available_at    REAL    NOT NULL,
        done_at         REAL
    );
    CREATE INDEX outbox_pending ON outbox (status, available_at);
    CREATE INDEX outbox_by_entity ON outbox (entity, id);

    CREATE TABLE timers (
        entity      TEXT NOT NULL,
        name        TEXT NOT NULL,
        due_at      REAL NOT NULL,
        event_type  TEXT NOT NULL,
        event_id    TEXT NOT NULL UNIQUE,
        armed_seq   INTEGER NOT NULL,
        PRIMARY KEY (entity, name)
    ) WITHOUT ROWID;
    CREATE INDEX timers_due ON timers (due_at);

    CREATE TABLE dead_letters (
        id           INTEGER PRIMARY KEY,
        received_at  REAL NOT NULL,
        source       TEXT NOT NULL,
        entity       TEXT,
        raw          TEXT NOT NULL,
        error        TEXT NOT NULL
    );
    CREATE INDEX dead_letters_by_entity ON dead_letters (entity);

    CREATE TABLE duplicates (
        id           INTEGER PRIMARY KEY,
        event_id     TEXT NOT NULL,
        entity       TEXT NOT NULL,
        received_at  REAL NOT NULL
    );
    CREATE INDEX duplicates_by_event ON duplicates (event_id);
    """,
    # 2: held commands remember what they wait for, so the right ones are released.
    """
    ALTER TABLE outbox ADD COLUMN hold_key TEXT;
    CREATE INDEX outbox_held ON outbox (hold_key) WHERE status = 'held';
    """,
    # 3: what operators did to commands (retry, discard): who, why, when, from what.
    """
    CREATE TABLE outbox_actions (
        id              INTEGER PRIMARY KEY,
        command_id      INTEGER NOT NULL,
        action          TEXT    NOT NULL,
        actor           TEXT    NOT NULL,
        reason          TEXT,
        at              REAL    NOT NULL,
        status_before   TEXT    NOT NULL,
        attempts_before INTEGER NOT NULL,
        error_before    TEXT
    );
    CREATE INDEX outbox_actions_by_command ON outbox_actions (command_id, id);
    """,
    # 4: named cursors: how far a periodic pull has come, kept across restarts.
    """
    CREATE TABLE cursors (
        name        TEXT PRIMARY KEY,
        value       TEXT NOT NULL,
        updated_at  REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # oauth: the TikTok tokens' table joins the migrations (it was created by the
    # adapter on first use, hence IF NOT EXISTS); tokens traded from a code wait
    # in a staging table until the connection chart accepts the authorization;
    # OAuth `state` nonces are kept as digests only, bound to a shop (CONN-7).
    """
    CREATE TABLE IF NOT EXISTS tiktok_credentials (
        shop                    TEXT PRIMARY KEY,
        tiktok_shop_id          TEXT NOT NULL,
        shop_cipher             TEXT NOT NULL,
        access_token            TEXT NOT NULL,
        access_token_expire_in  INTEGER NOT NULL,
        refresh_token           TEXT NOT NULL,
        refresh_token_expire_in INTEGER NOT NULL
    );
    CREATE TABLE tiktok_credentials_staged (
        event_id                TEXT PRIMARY KEY,
        shop                    TEXT NOT NULL,
        tiktok_shop_id          TEXT NOT NULL,
        shop_cipher             TEXT NOT NULL,
        access_token            TEXT NOT NULL,
        access_token_expire_in  INTEGER NOT NULL,
        refresh_token           TEXT NOT NULL,
        refresh_token_expire_in INTEGER NOT NULL,
        staged_at               REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE oauth_states (
        digest      TEXT PRIMARY KEY,
        shop        TEXT NOT NULL,
        issued_at   REAL NOT NULL,
        expires_at  REAL NOT NULL,
        used_at     REAL
    ) WITHOUT ROWID;
    """,
    # limits: a dead letter is kept once per (source, digest of the input, reason) with
    # its size, a count and when it was last seen, so junk sent again and again is one
    # row (a signed body refused for two reasons, e.g. under two topics, is two); rows
    # from before keep a NULL digest (never merged) and their raw text as it was.
    """
    ALTER TABLE dead_letters ADD COLUMN digest TEXT;
    ALTER TABLE dead_letters ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE dead_letters ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE dead_letters ADD COLUMN last_seen REAL;
    UPDATE dead_letters SET size = length(CAST(raw AS BLOB)), last_seen = received_at;
    CREATE UNIQUE INDEX dead_letters_by_digest ON dead_letters (source, digest, error);
    CREATE INDEX dead_letters_by_last_seen ON dead_letters (last_seen);
    """,
    # writer: outbox claims (ENG-10). Who runs a command and until when (its
    # lease), so two processes on one database never run the same command.
    """
    ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
    ALTER TABLE outbox ADD COLUMN claim_until REAL;
    """,
    # read models: records, one table for every adapter's durable values (a
    # JSON object under a namespace and a key, with optional expiry and use
    # times), so no adapter keeps a table of its own. The TikTok adapter's
    # three tables move into it, rows and all, and go.
    """
    CREATE TABLE records (
        namespace   TEXT NOT NULL,
        key         TEXT NOT NULL,
        value       TEXT NOT NULL,
        stored_at   REAL,
        expires_at  REAL,
        used_at     REAL,
        PRIMARY KEY (namespace, key)
    ) WITHOUT ROWID;
    CREATE INDEX records_by_expiry ON records (namespace, expires_at)
        WHERE expires_at IS NOT NULL;
    INSERT INTO records (namespace, key, value)
        SELECT 'tiktok_shop.credentials', shop, json_object(
            'shop', shop, 'tiktok_shop_id', tiktok_shop_id, 'shop_cipher', shop_cipher,
            'access_token', access_token, 'access_token_expire_in', access_token_expire_in,
            'refresh_token', refresh_token, 'refresh_token_expire_in', refresh_token_expire_in)
        FROM tiktok_credentials;
    INSERT INTO records (namespace, key, value, stored_at)
        SELECT 'tiktok_shop.staged_credentials', event_id, json_object(
            'shop', shop, 'tiktok_shop_id', tiktok_shop_id, 'shop_cipher', shop_cipher,
            'access_token', access_token, 'access_token_expire_in', access_token_expire_in,
            'refresh_token', refresh_token, 'refresh_token_expire_in', refresh_token_expire_in),
            staged_at
        FROM tiktok_credentials_staged;
    INSERT INTO records (namespace, key, value, stored_at, expires_at, used_at)
        SELECT 'tiktok_shop.oauth_states', digest, json_object('shop', shop),
            issued_at, expires_at, used_at
        FROM oauth_states;
    DROP TABLE tiktok_credentials;
    DROP TABLE tiktok_credentials_staged;
    DROP TABLE oauth_states;
    """,
    # versions (ENG-9): the chart version that applied each event (NULL in logs
    # written before: version 1), the version each entity is pinned to, and the
    # history of its compound states (JSON, NULL when none was recorded).
    """
    ALTER TABLE events ADD COLUMN chart_version INTEGER;
    ALTER TABLE entities ADD COLUMN chart_version INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE entities ADD COLUMN history TEXT;
    """,
    # inspector: one chart's entities in key order, so the inspector's list
    # filtered by chart (and by a state, whose chart it infers) reads its page
    # without walking past every other chart's entities (docs/inspector.md).
    """
    CREATE INDEX entities_by_chart_key ON entities (chart, key);
    """,
    # dead letters: an operator's discard of one letter, kept on its row (when,
    # who, why) rather than deleting it (engine.store.dead_letters_sql).
    """
    ALTER TABLE dead_letters ADD COLUMN discarded_at REAL;
    ALTER TABLE dead_letters ADD COLUMN discarded_by TEXT;
    ALTER TABLE dead_letters ADD COLUMN discard_reason TEXT;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
