//! Group commit for new backchannel requests. Concurrent `/bc-authorize` calls hand their row to one
//! writer task, which inserts whatever has queued up in a single transaction and answers each caller
//! after the commit: every acknowledged request is durable, and a burst costs one commit instead of
//! one per request (SQLite allows one writer at a time anyway).
use tokio::sync::{mpsc, oneshot};

use super::{
    request_inserts::{InsertLimits, InsertOutcome},
    Store, StoreError, StoreResult,
};
use crate::ciba::auth_request::AuthRequest;

/// The most rows one transaction takes; more wait for the next. One INSERT statement carries them all.
const MAX_BATCH: usize = super::request_inserts::MAX_ROWS_PER_INSERT;

type Job = (AuthRequest, oneshot::Sender<StoreResult<InsertOutcome>>);

pub struct InsertQueue {
    jobs: mpsc::Sender<Job>,
}

impl InsertQueue {
    /// Starts the writer task on the current runtime; it ends when the queue is dropped.
    pub fn start(store: Store, limits: InsertLimits) -> InsertQueue {
        let (jobs, mut queued) = mpsc::channel::<Job>(4 * MAX_BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while queued.recv_many(&mut batch, MAX_BATCH).await > 0 {
                // Let the request handlers that are ready run first, so their rows join this commit
                // instead of each waking the writer for a batch of one.
                // Keep yielding while that brings more rows: under load the batch fills; when idle, a
                // lone request waits for one yield only.
                while batch.len() < MAX_BATCH {
                    tokio::task::yield_now().await;
                    let before = batch.len();
                    while batch.len() < MAX_BATCH {
                        match queued.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    if batch.len() == before {
                        break;
                    }
                }
                let (rows, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
                tracing::debug!(rows = rows.len(), "batch");
                match store.insert_auth_requests(&rows, limits).await {
                    Ok(outcomes) => {
                        for (reply, outcome) in replies.into_iter().zip(outcomes) {
                            let _ = reply.send(Ok(outcome));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, rows = rows.len(), "inserting backchannel requests failed");
                        for reply in replies {
                            let _ = reply.send(Err(StoreError::Unavailable(e.to_string())));
                        }
                    }
                }
            }
        });
        InsertQueue { jobs }
    }

    /// Inserts `row` (within the limits) and returns once its transaction has committed.
    pub async fn insert(&self, row: AuthRequest) -> StoreResult<InsertOutcome> {
        let (reply, answer) = oneshot::channel();
        let closed = || StoreError::Unavailable("the request writer has stopped".into());
        self.jobs.send((row, reply)).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}
