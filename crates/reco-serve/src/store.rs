//! The database: users, items, feedback events, forgotten users and model versions, in SQLite
//! (a file, WAL mode) or PostgreSQL through one code path (sqlx's `Any` driver, `$N`
//! placeholders, SQL both accept). Events are the source of truth; everything the server holds
//! in memory can be rebuilt from here.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};

use crate::error::{Result, ServeError};

/// Sequence numbers scanned per statement when an item's events are deleted: at most 40 ms
/// on a 20M-event SQLite log (1.8 s for the whole log).
const PURGE_RANGE: i64 = 200_000;

/// Which database the URL named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A feedback event as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    /// Position in the log (assigned by the database, increasing with commits of one writer).
    pub seq: i64,
    /// User id.
    pub user: String,
    /// Item id.
    pub item: String,
    /// Event type (`view`, `purchase`, `dislike`, …).
    pub kind: String,
    /// The event's value (a rating, a count; 1 when the client gave none).
    pub value: f64,
    /// Unix time, seconds.
    pub timestamp: i64,
}

/// An event to insert.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// User id.
    pub user: String,
    /// Item id.
    pub item: String,
    /// Event type.
    pub kind: String,
    /// Value.
    pub value: f64,
    /// Unix time, seconds.
    pub timestamp: i64,
    /// The recommendation response this event follows from, if the client says so.
    pub recommendation: Option<String>,
}

/// A batch of events with its optional idempotency key.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Events, in order.
    pub events: Vec<NewEvent>,
    /// A key the client reuses when it retries; a batch whose key was committed before is not
    /// inserted again.
    pub key: Option<String>,
}

/// What the commit did with a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Inserted; `last_seq` is the largest sequence number given to its events.
    Inserted {
        /// Largest sequence number of the batch.
        last_seq: i64,
    },
    /// Its idempotency key had been committed: nothing inserted.
    Duplicate,
}

/// An item with its metadata.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ItemRow {
    /// Item id.
    pub id: String,
    /// Display title.
    #[serde(default)]
    pub title: Option<String>,
    /// Categories (filters, cold start).
    #[serde(default)]
    pub categories: Vec<String>,
    /// Other metadata: strings, numbers, lists of strings.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// When the item appeared (Unix seconds); the time of the upsert when not given.
    #[serde(default)]
    pub timestamp: Option<i64>,
}

/// The impressions of batch `seq`.
fn decode_batch(bytes: &[u8], seq: i64) -> Result<Vec<ImpressionRow>> {
    reco_core::artifact::decode(bytes, "impression batch")
        .map_err(|e| ServeError::Storage(format!("impression batch {seq}: {e}")))
}

/// Impressions encoded as one row of `impression_batches`.
#[derive(Clone, Debug)]
pub struct ImpressionBatch {
    /// Earliest impression time.
    pub first_ts: i64,
    /// Latest impression time.
    pub last_ts: i64,
    /// Impressions in it.
    pub rows: i64,
    /// Them, postcard-encoded.
    pub data: Vec<u8>,
}

impl ImpressionBatch {
    /// A batch from impressions each already encoded by [`ImpressionRef::encode`] (with its
    /// time): postcard writes a list as its length (a LEB128 varint) followed by the elements,
    /// so the batch is that length and the encodings end to end, and it decodes as a
    /// `Vec<ImpressionRow>`.
    pub fn from_encoded(rows: &[(i64, Vec<u8>)]) -> Option<ImpressionBatch> {
        let first_ts = rows.iter().map(|r| r.0).min()?;
        let last_ts = rows.iter().map(|r| r.0).max()?;
        let mut data = Vec::with_capacity(10 + rows.iter().map(|r| r.1.len()).sum::<usize>());
        let mut n = rows.len();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                data.push(byte);
                break;
            }
            data.push(byte | 0x80);
        }
        for r in rows {
            data.extend_from_slice(&r.1);
        }
        Some(ImpressionBatch {
            first_ts,
            last_ts,
            rows: rows.len() as i64,
            data,
        })
    }
}

/// A served list as stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImpressionRow {
    /// The response id (`r-…`).
    pub id: String,
    /// The user asked for (lists without a user: none).
    pub user: Option<String>,
    /// Unix seconds.
    pub ts: i64,
    /// The model version that answered.
    pub version: Option<i64>,
    /// The experiment the user was in.
    pub experiment: Option<String>,
    /// Their arm.
    pub arm: Option<String>,
    /// `recommend`, `session`, `similar`, `popular`, `latest`.
    pub route: String,
    /// The item ids shown, in position order.
    pub items: Vec<String>,
    /// For interleaved lists, the team of each position (`0`/`1` characters).
    pub teams: Option<String>,
    /// The newest event sequence number committed when the list was served.
    pub event_seq: i64,
}

/// A served list, borrowed from the response being built: what a request encodes for the
/// impression log. Its fields are [`ImpressionRow`]'s in the same order and encode the same
/// way (a `&str` as a `String`), so one allocation per list replaces a dozen.
#[derive(serde::Serialize)]
pub struct ImpressionRef<'a> {
    /// See [`ImpressionRow`].
    pub id: &'a str,
    /// See [`ImpressionRow`].
    pub user: Option<&'a str>,
    /// See [`ImpressionRow`].
    pub ts: i64,
    /// See [`ImpressionRow`].
    pub version: Option<i64>,
    /// See [`ImpressionRow`].
    pub experiment: Option<&'a str>,
    /// See [`ImpressionRow`].
    pub arm: Option<&'a str>,
    /// See [`ImpressionRow`].
    pub route: &'a str,
    /// See [`ImpressionRow`].
    pub items: Vec<&'a str>,
    /// See [`ImpressionRow`].
    pub teams: Option<&'a str>,
    /// See [`ImpressionRow`].
    pub event_seq: i64,
}

impl ImpressionRef<'_> {
    /// Its postcard encoding.
    pub fn encode(&self) -> Result<Vec<u8>> {
        reco_core::artifact::encode(self)
            .map_err(|e| ServeError::Storage(format!("encoding an impression: {e}")))
    }
}

/// An experiment as stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ExperimentRow {
    /// Its name.
    pub name: String,
    /// The specification it was created with.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    /// `running` or `stopped`.
    pub status: String,
    /// Unix seconds.
    pub created: i64,
    /// When it was stopped (0 while running).
    pub ended: i64,
    /// Arms the guard rail stopped.
    pub stopped_arms: Vec<String>,
    /// Why it or an arm stopped.
    pub message: String,
}

/// A model version as stored.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct VersionRow {
    /// Version number, increasing.
    pub version: i64,
    /// `active`, `ready` (kept, can be activated), `rejected` (lost the promotion gate),
    /// `retired` (artifact deleted), `failed`.
    pub status: String,
    /// The model specification.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    /// Unix time the version was created.
    pub created: i64,
    /// Events up to this sequence number were in its training data.
    pub trained_through: i64,
    /// The forget clock when its data was read: users forgotten later are masked in it.
    pub forget_clock: i64,
    /// Training window: first and last event time (Unix seconds).
    pub window: [i64; 2],
    /// Users, items and interactions it was trained on.
    pub users: i64,
    /// Items.
    pub items: i64,
    /// Interactions.
    pub interactions: i64,
    /// Offline metrics on the recent hold-out, with the active model's beside them.
    #[schema(value_type = Object)]
    pub metrics: serde_json::Value,
    /// Training time, seconds.
    pub train_seconds: f64,
    /// Artifact directory.
    pub artifact: String,
    /// Why it was rejected or failed, or who activated it.
    pub message: String,
}

/// The database handle; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

const ROWS_PER_INSERT: usize = 500;

impl Store {
    /// Connects (creating an SQLite file if missing) and creates the tables.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(ServeError::Config(format!(
                "database {url:?}: use sqlite://FILE or postgres://USER@HOST:PORT/DB"
            )));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        let opts = AnyConnectOptions::from_str(&url)
            .map_err(|e| ServeError::Config(format!("database URL: {e}")))?;
        let mut pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            pool = pool.after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL: readers never block the writer. synchronous=FULL: the WAL is synced
                    // at every commit, so an acknowledged event survives a power loss too
                    // (NORMAL would only survive a process crash). busy_timeout: concurrent
                    // writers wait instead of failing.
                    conn.execute("PRAGMA journal_mode=WAL").await?;
                    conn.execute("PRAGMA synchronous=FULL").await?;
                    conn.execute("PRAGMA busy_timeout=10000").await?;
                    Ok(())
                })
            });
        }
        let pool = pool
            .connect_with(opts)
            .await
            .map_err(|e| ServeError::Storage(format!("cannot connect to {}: {e}", redact(&url))))?;
        let store = Store { pool, backend };
        store.migrate().await?;
        Ok(store)
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn migrate(&self) -> Result<()> {
        let serial = match self.backend {
            Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Backend::Postgres => "BIGSERIAL PRIMARY KEY",
        };
        let blob = match self.backend {
            Backend::Sqlite => "BLOB",
            Backend::Postgres => "BYTEA",
        };
        let statements = [
            "CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, fields TEXT NOT NULL, \
             updated BIGINT NOT NULL)"
                .to_string(),
            "CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY, title TEXT, \
             categories TEXT NOT NULL, fields TEXT NOT NULL, ts BIGINT NOT NULL, \
             updated BIGINT NOT NULL)"
                .to_string(),
            format!(
                "CREATE TABLE IF NOT EXISTS events (seq {serial}, user_id TEXT NOT NULL, \
                 item_id TEXT NOT NULL, kind TEXT NOT NULL, value DOUBLE PRECISION NOT NULL, \
                 ts BIGINT NOT NULL, recommendation TEXT)"
            ),
            "CREATE INDEX IF NOT EXISTS events_user ON events (user_id, seq)".to_string(),
            // No index by item: its leaves are random pages of a B-tree as large as the log,
            // and at 20M events keeping it halved ingestion (docs/serve.md). Deleting an item,
            // the one query by item, scans in short chunks instead (`delete_item`).
            "DROP INDEX IF EXISTS events_item".to_string(),
            "CREATE INDEX IF NOT EXISTS events_kind ON events (kind)".to_string(),
            "CREATE TABLE IF NOT EXISTS batch_keys (key TEXT PRIMARY KEY, events BIGINT NOT NULL, \
             at BIGINT NOT NULL)"
                .to_string(),
            // A forgotten user's id is kept only as a digest: enough to keep old model
            // versions from serving them, nothing to identify them by.
            "CREATE TABLE IF NOT EXISTS forgotten (user_digest TEXT PRIMARY KEY, \
             forget_clock BIGINT NOT NULL, at BIGINT NOT NULL)"
                .to_string(),
            // Counts forgettings: a version whose data was read at clock c may hold the data
            // of every user forgotten at a clock above c, and never serves them.
            "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)"
                .to_string(),
            "INSERT INTO counters (name, value) VALUES ('forget', 0) ON CONFLICT (name) DO NOTHING"
                .to_string(),
            "CREATE TABLE IF NOT EXISTS versions (version BIGINT PRIMARY KEY, status TEXT NOT NULL, \
             spec TEXT NOT NULL, created BIGINT NOT NULL, trained_through BIGINT NOT NULL, \
             window_start BIGINT NOT NULL, window_end BIGINT NOT NULL, users BIGINT NOT NULL, \
             items BIGINT NOT NULL, interactions BIGINT NOT NULL, metrics TEXT NOT NULL, \
             train_seconds DOUBLE PRECISION NOT NULL, artifact TEXT NOT NULL, \
             message TEXT NOT NULL, activated BIGINT NOT NULL, forget_clock BIGINT NOT NULL)"
                .to_string(),
            // At most one active version, even with concurrent activations on several replicas.
            "CREATE UNIQUE INDEX IF NOT EXISTS versions_one_active ON versions (status) \
             WHERE status = 'active'"
                .to_string(),
            // Impressions are written in batches, one row per batch holding its impressions
            // (postcard-encoded): the database's cost is per batch, not per list served (a row
            // per list with its indexes cost recommend throughput 29% under load). Readers pick
            // batches by time and filter in memory.
            format!(
                "CREATE TABLE IF NOT EXISTS impression_batches (seq {serial}, \
                 first_ts BIGINT NOT NULL, last_ts BIGINT NOT NULL, rows BIGINT NOT NULL, \
                 data {blob} NOT NULL)"
            ),
            "CREATE INDEX IF NOT EXISTS impression_batches_ts ON impression_batches (last_ts)"
                .to_string(),
            // Users who opted out of personalisation: served popular items, left out of training.
            "CREATE TABLE IF NOT EXISTS opt_outs (user_id TEXT PRIMARY KEY, at BIGINT NOT NULL)"
                .to_string(),
            // Every opt-out and opt-in in order, so that replicas follow both (an opt-in
            // deletes its `opt_outs` row, which a replica could not see).
            format!(
                "CREATE TABLE IF NOT EXISTS opt_out_log (seq {serial}, user_id TEXT NOT NULL, \
                 opt_out BIGINT NOT NULL, at BIGINT NOT NULL)"
            ),
            "CREATE TABLE IF NOT EXISTS experiments (name TEXT PRIMARY KEY, spec TEXT NOT NULL, \
             status TEXT NOT NULL, created BIGINT NOT NULL, ended BIGINT NOT NULL, \
             stopped_arms TEXT NOT NULL, message TEXT NOT NULL)"
                .to_string(),
            // At most one running experiment.
            "CREATE UNIQUE INDEX IF NOT EXISTS experiments_one_running ON experiments (status) \
             WHERE status = 'running'"
                .to_string(),
        ];
        for s in statements {
            self.pool.execute(s.as_str()).await?;
        }
        Ok(())
    }

    /// Commits batches in one transaction and reports each one's outcome. Nothing is reported
    /// before the commit returns: an acknowledged event is in the database.
    /// `new_items` are item ids the events name that may not have a row yet: rows without
    /// metadata are created for them in the same transaction. Also returns every sequence
    /// number given (replicas use them to tell their own events from others').
    pub async fn insert_batches(
        &self,
        batches: &[Batch],
        new_items: &[&str],
    ) -> Result<(Vec<BatchOutcome>, Vec<i64>)> {
        let mut tx = self.pool.begin().await?;
        let mut out = Vec::with_capacity(batches.len());
        let mut seqs = Vec::new();
        let now = now();
        for b in batches {
            if let Some(key) = &b.key {
                let r = sqlx::query(
                    "INSERT INTO batch_keys (key, events, at) VALUES ($1, $2, $3) \
                     ON CONFLICT (key) DO NOTHING",
                )
                .bind(key.as_str())
                .bind(b.events.len() as i64)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if r.rows_affected() == 0 {
                    out.push(BatchOutcome::Duplicate);
                    continue;
                }
            }
            let mut last_seq = 0;
            for chunk in b.events.chunks(ROWS_PER_INSERT) {
                let mut sql = String::from(
                    "INSERT INTO events (user_id, item_id, kind, value, ts, recommendation) VALUES ",
                );
                for k in 0..chunk.len() {
                    let p = k * 6;
                    if k > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&format!(
                        "(${},${},${},${},${},${})",
                        p + 1,
                        p + 2,
                        p + 3,
                        p + 4,
                        p + 5,
                        p + 6
                    ));
                }
                sql.push_str(" RETURNING seq");
                let mut q = sqlx::query(&sql);
                for e in chunk {
                    q = q
                        .bind(e.user.as_str())
                        .bind(e.item.as_str())
                        .bind(e.kind.as_str())
                        .bind(e.value)
                        .bind(e.timestamp)
                        .bind(e.recommendation.as_deref());
                }
                for row in q.fetch_all(&mut *tx).await? {
                    let seq = row.try_get::<i64, _>(0)?;
                    last_seq = last_seq.max(seq);
                    seqs.push(seq);
                }
            }
            out.push(BatchOutcome::Inserted { last_seq });
        }
        if out.iter().any(|o| *o != BatchOutcome::Duplicate) {
            insert_missing_items(&mut tx, new_items, now).await?;
        }
        tx.commit().await?;
        Ok((out, seqs))
    }

    /// The active version's number, if one is active.
    pub async fn active_version(&self) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT version FROM versions WHERE status = 'active'")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?)
    }

    /// Items updated at or after `since` (Unix seconds).
    pub async fn items_updated_since(&self, since: i64) -> Result<Vec<ItemRow>> {
        let rows =
            sqlx::query("SELECT id, title, categories, fields, ts FROM items WHERE updated >= $1")
                .bind(since)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(item_row).collect()
    }

    /// The largest sequence number committed (0 for an empty log).
    pub async fn max_seq(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Number of stored events.
    pub async fn count_events(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Events with `after < seq <= through`, in order, at most `limit`.
    pub async fn events_between(
        &self,
        after: i64,
        through: i64,
        limit: i64,
    ) -> Result<Vec<EventRow>> {
        let rows = sqlx::query(
            "SELECT seq, user_id, item_id, kind, value, ts FROM events \
             WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
        )
        .bind(after)
        .bind(through)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_row).collect()
    }

    /// One user's events after `after`, in order.
    pub async fn user_events_after(&self, user: &str, after: i64) -> Result<Vec<EventRow>> {
        let rows = sqlx::query(
            "SELECT seq, user_id, item_id, kind, value, ts FROM events \
             WHERE user_id = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(user)
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_row).collect()
    }

    /// Every event of a user, oldest first, with the recommendation each cites.
    pub async fn user_event_rows(&self, user: &str) -> Result<Vec<(EventRow, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT seq, user_id, item_id, kind, value, ts, recommendation FROM events \
             WHERE user_id = $1 ORDER BY seq",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((event_row(r)?, r.try_get::<Option<String>, _>(6)?)))
            .collect()
    }

    /// (user, item) pairs whose latest event is of one of the `negative` types, for one user
    /// or for everyone.
    pub async fn hidden(
        &self,
        negative: &[String],
        user: Option<&str>,
    ) -> Result<Vec<(String, String)>> {
        if negative.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=negative.len()).map(|k| format!("${k}")).collect();
        let marks = marks.join(",");
        let mut sql = format!(
            "SELECT DISTINCT n.user_id, n.item_id FROM events n WHERE n.kind IN ({marks}) \
             AND NOT EXISTS (SELECT 1 FROM events p WHERE p.user_id = n.user_id \
             AND p.item_id = n.item_id AND p.seq > n.seq AND p.kind NOT IN ({marks}))"
        );
        if user.is_some() {
            sql.push_str(&format!(" AND n.user_id = ${}", negative.len() + 1));
        }
        let mut q = sqlx::query(&sql);
        for k in negative {
            q = q.bind(k.as_str());
        }
        if let Some(u) = user {
            q = q.bind(u);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
            .collect()
    }

    /// Events per item of the given types (popularity).
    pub async fn item_counts(&self, kinds: &[String]) -> Result<Vec<(String, i64)>> {
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=kinds.len()).map(|k| format!("${k}")).collect();
        let sql = format!(
            "SELECT item_id, COUNT(*) FROM events WHERE kind IN ({}) GROUP BY item_id",
            marks.join(",")
        );
        let mut q = sqlx::query(&sql);
        for k in kinds {
            q = q.bind(k.as_str());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
            .collect()
    }

    /// Creates or replaces a user's metadata.
    pub async fn upsert_user(&self, id: &str, fields: &serde_json::Value) -> Result<()> {
        sqlx::query(
            "INSERT INTO users (id, fields, updated) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET fields = excluded.fields, updated = excluded.updated",
        )
        .bind(id)
        .bind(fields.to_string())
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A user's metadata and event count, if the user exists (as a row or through events).
    pub async fn user(&self, id: &str) -> Result<Option<(serde_json::Value, i64)>> {
        let fields = sqlx::query("SELECT fields FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let count: i64 = sqlx::query("SELECT COUNT(*) FROM events WHERE user_id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        match fields {
            Some(r) => Ok(Some((parse_json(&r.try_get::<String, _>(0)?), count))),
            None if count > 0 => Ok(Some((serde_json::json!({}), count))),
            None => Ok(None),
        }
    }

    /// Deletes a user, their events and their batch keys' effects, and records the forgetting
    /// (as a digest) so that model versions trained before it never serve them. Returns the
    /// deleted events and the forget clock, or `None` when the user did not exist.
    pub async fn forget_user(&self, id: &str) -> Result<Option<(Vec<EventRow>, i64)>> {
        // Writes only (DELETE … RETURNING first): an SQLite transaction that read before
        // writing could fail to upgrade under concurrent feedback, and on PostgreSQL rows
        // inserted between a read and the delete would go uncounted.
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "DELETE FROM events WHERE user_id = $1 RETURNING seq, user_id, item_id, kind, value, ts",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let events: Vec<EventRow> = rows.iter().map(event_row).collect::<Result<_>>()?;
        let user = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if events.is_empty() && user.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let clock: i64 = sqlx::query(
            "UPDATE counters SET value = value + 1 WHERE name = 'forget' RETURNING value",
        )
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        sqlx::query(
            "INSERT INTO forgotten (user_digest, forget_clock, at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_digest) DO UPDATE SET forget_clock = excluded.forget_clock, \
             at = excluded.at",
        )
        .bind(digest(id))
        .bind(clock)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some((events, clock)))
    }

    /// The forget clock now (read before a training reads its data).
    pub async fn forget_clock(&self) -> Result<i64> {
        let row = sqlx::query("SELECT value FROM counters WHERE name = 'forget'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Users forgotten at or after `since` (Unix seconds): (digest, forget clock).
    pub async fn forgotten(&self, since: i64) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT user_digest, forget_clock FROM forgotten WHERE at >= $1")
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
            .collect()
    }

    /// Creates or replaces items.
    pub async fn upsert_items(&self, items: &[ItemRow]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let now = now();
        for it in items {
            sqlx::query(
                "INSERT INTO items (id, title, categories, fields, ts, updated) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET \
                 title = excluded.title, categories = excluded.categories, \
                 fields = excluded.fields, ts = excluded.ts, updated = excluded.updated",
            )
            .bind(it.id.as_str())
            .bind(it.title.as_deref())
            .bind(serde_json::to_string(&it.categories).unwrap_or_else(|_| "[]".into()))
            .bind(serde_json::Value::Object(it.fields.clone()).to_string())
            .bind(it.timestamp.unwrap_or(now))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every item with its metadata.
    pub async fn items(&self) -> Result<Vec<ItemRow>> {
        let rows = sqlx::query("SELECT id, title, categories, fields, ts FROM items ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(item_row).collect()
    }

    /// One item.
    pub async fn item(&self, id: &str) -> Result<Option<ItemRow>> {
        let row = sqlx::query("SELECT id, title, categories, fields, ts FROM items WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(item_row).transpose()
    }

    /// Deletes an item and its events; false when it did not exist.
    ///
    /// Events have no index by item, so they are found by scanning the log in ranges of
    /// sequence numbers, one short statement each: feedback commits go on between them
    /// instead of waiting for one long delete. The item's row goes last, so an interrupted
    /// deletion leaves the item in place and repeating the request finishes it.
    pub async fn delete_item(&self, id: &str) -> Result<bool> {
        let last: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM events")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        let mut removed = 0u64;
        let mut from = 0i64;
        while from < last {
            let to = from.saturating_add(PURGE_RANGE);
            removed +=
                sqlx::query("DELETE FROM events WHERE seq > $1 AND seq <= $2 AND item_id = $3")
                    .bind(from)
                    .bind(to)
                    .bind(id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
            from = to;
        }
        let i = sqlx::query("DELETE FROM items WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(removed > 0 || i.rows_affected() > 0)
    }

    /// The next version number.
    pub async fn next_version(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM versions")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)? + 1)
    }

    /// Records a model version.
    pub async fn insert_version(&self, v: &VersionRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO versions (version, status, spec, created, trained_through, window_start, \
             window_end, users, items, interactions, metrics, train_seconds, artifact, message, \
             activated, forget_clock) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,0,$15)",
        )
        .bind(v.version)
        .bind(v.status.as_str())
        .bind(v.spec.to_string())
        .bind(v.created)
        .bind(v.trained_through)
        .bind(v.window[0])
        .bind(v.window[1])
        .bind(v.users)
        .bind(v.items)
        .bind(v.interactions)
        .bind(v.metrics.to_string())
        .bind(v.train_seconds)
        .bind(v.artifact.as_str())
        .bind(v.message.as_str())
        .bind(v.forget_clock)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Makes `version` the active one (the previous active becomes `ready`), in one transaction.
    pub async fn activate(&self, version: i64, message: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE versions SET status = 'ready' WHERE status = 'active'")
            .execute(&mut *tx)
            .await?;
        let stamp: i64 = sqlx::query("SELECT COALESCE(MAX(activated), 0) + 1 FROM versions")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let r = sqlx::query(
            "UPDATE versions SET status = 'active', activated = $1, message = $2 WHERE version = $3",
        )
        .bind(stamp)
        .bind(message)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(ServeError::NotFound(format!(
                "model version {version} does not exist"
            )));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Sets a version's status (and message).
    pub async fn set_status(&self, version: i64, status: &str, message: &str) -> Result<()> {
        sqlx::query("UPDATE versions SET status = $1, message = $2 WHERE version = $3")
            .bind(status)
            .bind(message)
            .bind(version)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every version, newest first.
    pub async fn versions(&self) -> Result<Vec<VersionRow>> {
        let rows = sqlx::query(
            "SELECT version, status, spec, created, trained_through, window_start, window_end, \
             users, items, interactions, metrics, train_seconds, artifact, message, \
             forget_clock FROM versions ORDER BY version DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_row).collect()
    }

    /// The version to roll back to: the most recently active one that is not active now and
    /// still has its artifact.
    pub async fn previous_version(&self) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT version FROM versions WHERE status = 'ready' AND activated > 0 \
             ORDER BY activated DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?)
    }

    /// Writes an encoded batch of impressions.
    pub async fn insert_impression_batch(&self, b: &ImpressionBatch) -> Result<()> {
        sqlx::query(
            "INSERT INTO impression_batches (first_ts, last_ts, rows, data) VALUES ($1, $2, $3, $4)",
        )
        .bind(b.first_ts)
        .bind(b.last_ts)
        .bind(b.rows)
        .bind(b.data.as_slice())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Impressions served at or after `since`, of one experiment or all, in the order they
    /// were written; at most `limit` (the caller reports when the limit was reached).
    pub async fn impressions(
        &self,
        experiment: Option<&str>,
        since: i64,
        limit: i64,
    ) -> Result<Vec<ImpressionRow>> {
        let mut out = Vec::new();
        let mut after = 0i64;
        let limit = usize::try_from(limit).unwrap_or(0);
        while out.len() < limit {
            let batches = sqlx::query(
                "SELECT seq, data FROM impression_batches WHERE last_ts >= $1 AND seq > $2 \
                 ORDER BY seq LIMIT 64",
            )
            .bind(since)
            .bind(after)
            .fetch_all(&self.pool)
            .await?;
            if batches.is_empty() {
                break;
            }
            for b in &batches {
                after = b.try_get(0)?;
                let rows = decode_batch(&b.try_get::<Vec<u8>, _>(1)?, after)?;
                out.extend(rows.into_iter().filter(|r| {
                    r.ts >= since && experiment.is_none_or(|e| r.experiment.as_deref() == Some(e))
                }));
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Events that cite a recommendation, with sequence numbers above `after`: (sequence,
    /// recommendation, item, type), at most `limit`, in log order.
    pub async fn citing_events(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String, String, String)>> {
        let rows = sqlx::query(
            "SELECT seq, recommendation, item_id, kind FROM events WHERE seq > $1 \
             AND recommendation IS NOT NULL ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect()
    }

    /// Removes a forgotten user's impressions (rewriting the batches that hold them) and their
    /// opt-out row; returns how many impressions went.
    pub async fn forget_impressions(&self, user: &str) -> Result<u64> {
        sqlx::query("DELETE FROM opt_outs WHERE user_id = $1")
            .bind(user)
            .execute(&self.pool)
            .await?;
        let (mut after, mut removed) = (0i64, 0u64);
        loop {
            let batches = sqlx::query(
                "SELECT seq, data FROM impression_batches WHERE seq > $1 ORDER BY seq LIMIT 64",
            )
            .bind(after)
            .fetch_all(&self.pool)
            .await?;
            if batches.is_empty() {
                return Ok(removed);
            }
            for b in &batches {
                after = b.try_get(0)?;
                let rows = decode_batch(&b.try_get::<Vec<u8>, _>(1)?, after)?;
                let kept: Vec<&ImpressionRow> = rows
                    .iter()
                    .filter(|r| r.user.as_deref() != Some(user))
                    .collect();
                if kept.len() == rows.len() {
                    continue;
                }
                removed += (rows.len() - kept.len()) as u64;
                if kept.is_empty() {
                    sqlx::query("DELETE FROM impression_batches WHERE seq = $1")
                        .bind(after)
                        .execute(&self.pool)
                        .await?;
                } else {
                    let data = reco_core::artifact::encode(&kept)
                        .map_err(|e| ServeError::Storage(format!("encoding impressions: {e}")))?;
                    sqlx::query(
                        "UPDATE impression_batches SET data = $2, rows = $3 WHERE seq = $1",
                    )
                    .bind(after)
                    .bind(data.as_slice())
                    .bind(kept.len() as i64)
                    .execute(&self.pool)
                    .await?;
                }
            }
        }
    }

    /// Records a user's choice: `true` opts out of personalisation, `false` back in.
    pub async fn set_opt_out(&self, user: &str, opt_out: bool) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if opt_out {
            sqlx::query(
                "INSERT INTO opt_outs (user_id, at) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING",
            )
            .bind(user)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query("DELETE FROM opt_outs WHERE user_id = $1")
                .bind(user)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("INSERT INTO opt_out_log (user_id, opt_out, at) VALUES ($1, $2, $3)")
            .bind(user)
            .bind(i64::from(opt_out))
            .bind(now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Opt-outs and opt-ins recorded after position `after` of their log, in order:
    /// `(position, user, opted out)`.
    pub async fn opt_out_changes(&self, after: i64) -> Result<Vec<(i64, String, bool)>> {
        let rows = sqlx::query(
            "SELECT seq, user_id, opt_out FROM opt_out_log WHERE seq > $1 ORDER BY seq LIMIT 100000",
        )
        .bind(after)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>(0)?,
                    r.try_get::<String, _>(1)?,
                    r.try_get::<i64, _>(2)? != 0,
                ))
            })
            .collect()
    }

    /// The newest position of the opt-out log (0 when empty).
    pub async fn opt_out_clock(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM opt_out_log")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    /// Users who opted out.
    pub async fn opted_out(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT user_id FROM opt_outs")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>(0)?))
            .collect()
    }

    /// Deletes events whose time is before `cut` and impression batches wholly before it;
    /// returns how many events and impressions went. The log is scanned in ranges of sequence
    /// numbers, one short statement each, so feedback commits go on meanwhile.
    pub async fn delete_before(&self, cut: i64) -> Result<(u64, u64)> {
        let last: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM events")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        let (mut events, mut from) = (0u64, 0i64);
        while from < last {
            let to = from.saturating_add(PURGE_RANGE);
            events += sqlx::query("DELETE FROM events WHERE seq > $1 AND seq <= $2 AND ts < $3")
                .bind(from)
                .bind(to)
                .bind(cut)
                .execute(&self.pool)
                .await?
                .rows_affected();
            from = to;
        }
        let impressions: i64 = sqlx::query(
            "SELECT CAST(COALESCE(SUM(rows), 0) AS BIGINT) FROM impression_batches \
             WHERE last_ts < $1",
        )
        .bind(cut)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        sqlx::query("DELETE FROM impression_batches WHERE last_ts < $1")
            .bind(cut)
            .execute(&self.pool)
            .await?;
        Ok((events, u64::try_from(impressions).unwrap_or(0)))
    }

    /// Every user's value of a metadata field, as text (numbers and booleans written out).
    pub async fn user_field(&self, field: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT id, fields FROM users")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            let fields = parse_json(&r.try_get::<String, _>(1)?);
            let value = match fields.get(field) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Null) | None => continue,
                Some(v) => v.to_string(),
            };
            out.push((r.try_get(0)?, value));
        }
        Ok(out)
    }

    /// Records a new running experiment; false when one is already running or the name is
    /// taken.
    pub async fn create_experiment(&self, name: &str, spec: &serde_json::Value) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO experiments (name, spec, status, created, ended, stopped_arms, message) \
             VALUES ($1, $2, 'running', $3, 0, '[]', '') ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(spec.to_string())
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Every experiment, newest first.
    pub async fn experiments(&self) -> Result<Vec<ExperimentRow>> {
        let rows = sqlx::query(
            "SELECT name, spec, status, created, ended, stopped_arms, message FROM experiments \
             ORDER BY created DESC, name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let stopped: String = r.try_get(5)?;
                Ok(ExperimentRow {
                    name: r.try_get(0)?,
                    spec: parse_json(&r.try_get::<String, _>(1)?),
                    status: r.try_get(2)?,
                    created: r.try_get(3)?,
                    ended: r.try_get(4)?,
                    stopped_arms: serde_json::from_str(&stopped).unwrap_or_default(),
                    message: r.try_get(6)?,
                })
            })
            .collect()
    }

    /// Updates an experiment's status, stopped arms and message.
    pub async fn update_experiment(&self, e: &ExperimentRow) -> Result<()> {
        sqlx::query(
            "UPDATE experiments SET status = $2, ended = $3, stopped_arms = $4, message = $5 \
             WHERE name = $1",
        )
        .bind(e.name.as_str())
        .bind(e.status.as_str())
        .bind(e.ended)
        .bind(serde_json::to_string(&e.stopped_arms).unwrap_or_else(|_| "[]".into()))
        .bind(e.message.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Creates rows without metadata for items that do not have one (ids first seen in events).
async fn insert_missing_items(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    ids: &[&str],
    ts: i64,
) -> Result<()> {
    for chunk in ids.chunks(ROWS_PER_INSERT) {
        let mut sql =
            String::from("INSERT INTO items (id, title, categories, fields, ts, updated) VALUES ");
        for k in 0..chunk.len() {
            if k > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, NULL, '[]', '{{}}', ${}, ${})",
                3 * k + 1,
                3 * k + 2,
                3 * k + 3
            ));
        }
        sql.push_str(" ON CONFLICT (id) DO NOTHING");
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id).bind(ts).bind(ts);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

fn event_row(r: &sqlx::any::AnyRow) -> Result<EventRow> {
    Ok(EventRow {
        seq: r.try_get(0)?,
        user: r.try_get(1)?,
        item: r.try_get(2)?,
        kind: r.try_get(3)?,
        value: r.try_get(4)?,
        timestamp: r.try_get(5)?,
    })
}

fn item_row(r: &sqlx::any::AnyRow) -> Result<ItemRow> {
    let categories: Vec<String> =
        serde_json::from_str(&r.try_get::<String, _>(2)?).unwrap_or_default();
    let fields = match parse_json(&r.try_get::<String, _>(3)?) {
        serde_json::Value::Object(m) => m,
        _ => Default::default(),
    };
    Ok(ItemRow {
        id: r.try_get(0)?,
        title: r.try_get(1)?,
        categories,
        fields,
        timestamp: Some(r.try_get(4)?),
    })
}

fn version_row(r: &sqlx::any::AnyRow) -> Result<VersionRow> {
    Ok(VersionRow {
        version: r.try_get(0)?,
        status: r.try_get(1)?,
        spec: parse_json(&r.try_get::<String, _>(2)?),
        created: r.try_get(3)?,
        trained_through: r.try_get(4)?,
        window: [r.try_get(5)?, r.try_get(6)?],
        users: r.try_get(7)?,
        items: r.try_get(8)?,
        interactions: r.try_get(9)?,
        metrics: parse_json(&r.try_get::<String, _>(10)?),
        train_seconds: r.try_get(11)?,
        artifact: r.try_get(12)?,
        message: r.try_get(13)?,
        forget_clock: r.try_get(14)?,
    })
}

fn parse_json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or(serde_json::Value::Null)
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The digest under which a forgotten user is remembered (SHA-256, hex).
pub fn digest(user: &str) -> String {
    use sha2::Digest;
    reco_core::ids::hex(&sha2::Sha256::digest(user.as_bytes()))
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let cred = &url[s + 3..at];
            match cred.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &cred[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
