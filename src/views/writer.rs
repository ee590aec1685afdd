//! The one task that writes views: batches from the tracker's channel, one transaction each.

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::tracker::Record;
use crate::db::Db;
use crate::db::views::{CountedView, SessionRecord};

/// The most records written in one transaction.
const BATCH: usize = 512;

/// Writes records until `stop` is cancelled, then writes what is still queued and returns.
pub(crate) async fn run(db: Db, mut records: mpsc::Receiver<Record>, stop: CancellationToken) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            received = records.recv_many(&mut batch, BATCH) => {
                if received == 0 {
                    return;
                }
                write(&db, &mut batch).await;
            }
            () = stop.cancelled() => {
                // Graceful shutdown: nothing counted is lost.
                while let Ok(record) = records.try_recv() {
                    batch.push(record);
                    if batch.len() == BATCH {
                        write(&db, &mut batch).await;
                    }
                }
                write(&db, &mut batch).await;
                return;
            }
        }
    }
}

/// Writes and empties one batch; a failed batch is logged with its size (the counts it held
/// are lost, but `views` and `view_count` never disagree: both or neither are written).
async fn write(db: &Db, batch: &mut Vec<Record>) {
    if batch.is_empty() {
        return;
    }
    let (views, sessions): (Vec<_>, Vec<_>) = batch.drain(..).partition(|r| matches!(r, Record::View(_)));
    let views: Vec<CountedView> =
        views.into_iter().filter_map(|r| if let Record::View(v) = r { Some(v) } else { None }).collect();
    let sessions: Vec<SessionRecord> = sessions
        .into_iter()
        .filter_map(|r| if let Record::Session(s) = r { Some(s) } else { None })
        .collect();
    match db.views().record(&views, &sessions).await {
        Ok(()) => tracing::debug!(views = views.len(), sessions = sessions.len(), "view batch written"),
        Err(error) => {
            tracing::error!(%error, views = views.len(), sessions = sessions.len(), "view batch failed")
        }
    }
}
