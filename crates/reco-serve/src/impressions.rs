//! The impression log: every list served goes into a bounded queue that a background task
//! writes to the database in batches (whatever accumulated while the previous write ran, in
//! one transaction). A full queue drops the impression and counts it; a request never waits.

use tokio::sync::{mpsc, oneshot};

use crate::store::{ImpressionRow, Store};

/// Most impressions written in one transaction.
const BATCH: usize = 5000;

enum Msg {
    Row(Box<ImpressionRow>),
    /// Answered once everything queued before it is written.
    Flush(oneshot::Sender<()>),
}

/// The sending side of the log (cheap to clone).
#[derive(Clone, Debug)]
pub struct ImpressionLog {
    tx: Option<mpsc::Sender<Msg>>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Row(r) => write!(f, "Row({})", r.id),
            Msg::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl ImpressionLog {
    /// A log that writes to `store`, holding at most `queue` impressions in memory.
    pub fn start(store: Store, queue: usize) -> ImpressionLog {
        let (tx, rx) = mpsc::channel(queue.max(1));
        tokio::spawn(write_loop(store, rx));
        ImpressionLog { tx: Some(tx) }
    }

    /// A log that keeps nothing (`impressions.enabled = false`).
    pub fn disabled() -> ImpressionLog {
        ImpressionLog { tx: None }
    }

    /// Whether impressions are kept.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues an impression; drops and counts it when the queue is full.
    pub fn log(&self, row: ImpressionRow) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(Msg::Row(Box::new(row))) {
            Ok(()) => metrics::counter!("reco_impressions_logged_total").increment(1),
            Err(_) => metrics::counter!("reco_impressions_dropped_total").increment(1),
        }
    }

    /// Waits until every impression queued before the call is written (or failed).
    pub async fn flush(&self) {
        let Some(tx) = &self.tx else { return };
        let (done, wait) = oneshot::channel();
        if tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_loop(store: Store, mut rx: mpsc::Receiver<Msg>) {
    let mut rows: Vec<ImpressionRow> = Vec::with_capacity(BATCH);
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(m) = next.take() {
            match m {
                Msg::Row(r) => rows.push(*r),
                Msg::Flush(done) => waiting.push(done),
            }
            if rows.len() >= BATCH {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !rows.is_empty() {
            match store.insert_impressions(&rows).await {
                Ok(()) => {
                    metrics::counter!("reco_impressions_written_total").increment(rows.len() as u64)
                }
                Err(e) => {
                    metrics::counter!("reco_impressions_failed_total").increment(rows.len() as u64);
                    tracing::warn!(error = %e, rows = rows.len(), "writing impressions failed");
                }
            }
            rows.clear();
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}
