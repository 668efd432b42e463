//! The impression log: every list served goes into a bounded queue that a background task
//! writes to the database in batches: after the first impression of a batch it waits
//! `flush_ms`, then writes everything queued as one row. A full queue drops the impression and
//! counts it; a request never waits.
//!
//! Waiting matters: writing as soon as anything is queued meant a small transaction (and a
//! disk sync) every few hundred lists and a wake-up of the writer per list, which cost
//! recommend throughput 20% under load (BENCHMARKS.md).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify};

#[cfg(test)]
use crate::store::ImpressionRow;
use crate::store::{ImpressionBatch, ImpressionRef, Store};

/// Most impressions written in one row.
const BATCH: usize = 50_000;

enum Msg {
    /// An impression's time and encoding.
    Row(i64, Vec<u8>),
    /// Answered once everything queued before it is written.
    Flush(oneshot::Sender<()>),
}

/// The sending side of the log (cheap to clone).
#[derive(Clone, Debug)]
pub struct ImpressionLog {
    tx: Option<mpsc::Sender<Msg>>,
    /// Cuts the writer's wait short for a flush.
    hurry: Arc<Notify>,
    /// Impressions dropped because the queue was full.
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Row(ts, b) => write!(f, "Row({ts}, {} bytes)", b.len()),
            Msg::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl ImpressionLog {
    /// A log that writes to `store`, holding at most `queue` impressions in memory and
    /// writing a batch `flush_ms` after its first impression.
    pub fn start(store: Store, queue: usize, flush_ms: u64) -> ImpressionLog {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let hurry = Arc::new(Notify::new());
        tokio::spawn(write_loop(
            store,
            rx,
            hurry.clone(),
            Duration::from_millis(flush_ms),
        ));
        ImpressionLog {
            tx: Some(tx),
            hurry,
            dropped: Arc::default(),
        }
    }

    /// A log that keeps nothing (`impressions.enabled = false`).
    pub fn disabled() -> ImpressionLog {
        ImpressionLog {
            tx: None,
            hurry: Arc::new(Notify::new()),
            dropped: Arc::default(),
        }
    }

    /// Whether impressions are kept.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues an impression; drops and counts it when the queue is full (or when it cannot be
    /// encoded, which does not happen for rows of the server's own making).
    pub fn log(&self, row: &ImpressionRef<'_>) {
        let Some(tx) = &self.tx else { return };
        let sent = match row.encode() {
            Ok(bytes) => tx.try_send(Msg::Row(row.ts, bytes)).is_ok(),
            Err(_) => false,
        };
        match sent {
            true => metrics::counter!("reco_impressions_logged_total").increment(1),
            false => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("reco_impressions_dropped_total").increment(1);
            }
        }
    }

    #[cfg(test)]
    fn log_row(&self, row: &ImpressionRow) {
        self.log(&ImpressionRef {
            id: &row.id,
            user: row.user.as_deref(),
            ts: row.ts,
            version: row.version,
            experiment: row.experiment.as_deref(),
            arm: row.arm.as_deref(),
            route: &row.route,
            items: row.items.iter().map(String::as_str).collect(),
            teams: row.teams.as_deref(),
            event_seq: row.event_seq,
        });
    }

    /// Impressions dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every impression queued before the call is written (or failed).
    pub async fn flush(&self) {
        let Some(tx) = &self.tx else { return };
        let (done, wait) = oneshot::channel();
        // Wake the writer first: with a full queue the send below waits for it to drain.
        self.hurry.notify_one();
        if tx.send(Msg::Flush(done)).await.is_ok() {
            self.hurry.notify_one();
            let _ = wait.await;
        }
    }
}

async fn write_loop(store: Store, mut rx: mpsc::Receiver<Msg>, hurry: Arc<Notify>, wait: Duration) {
    let mut rows: Vec<(i64, Vec<u8>)> = Vec::with_capacity(BATCH);
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        // While this waits nobody polls the queue, so senders push without waking anyone.
        if !matches!(first, Msg::Flush(_)) {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = hurry.notified() => {}
            }
        }
        let mut next = Some(first);
        while let Some(m) = next.take() {
            match m {
                Msg::Row(ts, bytes) => rows.push((ts, bytes)),
                Msg::Flush(done) => waiting.push(done),
            }
            if rows.len() >= BATCH {
                break;
            }
            next = rx.try_recv().ok();
        }
        if let Some(batch) = ImpressionBatch::from_encoded(&rows) {
            let n = rows.len() as u64;
            match store.insert_impression_batch(&batch).await {
                Ok(()) => metrics::counter!("reco_impressions_written_total").increment(n),
                Err(e) => {
                    metrics::counter!("reco_impressions_failed_total").increment(n);
                    tracing::warn!(error = %e, rows = n, "writing impressions failed");
                }
            }
            rows.clear();
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(k: usize) -> ImpressionRow {
        ImpressionRow {
            id: format!("r-{k}"),
            user: Some(format!("u{k}")),
            ts: 1000 + k as i64,
            version: Some(1),
            experiment: None,
            arm: None,
            route: "recommend".into(),
            items: vec!["a".into(), "b".into()],
            teams: None,
            event_seq: 0,
        }
    }

    /// A full queue drops and counts instead of waiting; what was queued is written as one
    /// batch and read back in order, and a flush writes without waiting out the delay.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_drops_and_the_rest_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("i.db").display()))
            .await
            .expect("store");
        let log = ImpressionLog::start(store.clone(), 3, 60_000);
        let started = std::time::Instant::now();
        for k in 0..10 {
            log.log_row(&row(k));
        }
        // Logging never waited for the writer (which sleeps a minute after its first row).
        assert!(started.elapsed() < Duration::from_secs(5));
        log.flush().await;
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the flush cut the wait short"
        );
        let back = store.impressions(None, 0, 100).await.expect("read");
        assert_eq!(back.len() as u64 + log.dropped(), 10);
        // The queue holds 3; the writer may have taken the first one out before it filled.
        assert!((3..=4).contains(&back.len()), "{}", back.len());
        assert_eq!(back[0], row(0));
        assert!(back.windows(2).all(|w| w[0].ts < w[1].ts));
        assert_eq!(
            store
                .impressions(None, 1002, 100)
                .await
                .expect("read")
                .len(),
            back.len() - 2
        );
    }
}
