//! A bounded pool of CPU threads, so decoding never blocks tokio's async workers.
//!
//! Why not `spawn_blocking`: its pool grows to 512 threads and its queue is unbounded, so a
//! burst of uploads would become hundreds of concurrent 200 MB decodes. Here at most `threads`
//! jobs run and `queue` wait; the rest are refused at once with [`ImageError::Busy`].

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;

use tokio::sync::oneshot;

use super::ImageError;

/// Jobs that may wait for a worker before new ones are refused.
pub(crate) const DEFAULT_QUEUE: usize = 64;

/// A unit of work as the workers see it: the caller's closure with its reply attached.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed set of worker threads fed by a bounded queue.
///
/// Dropping the pool closes the queue; workers finish the jobs already queued and exit.
pub(crate) struct CpuPool {
    queue: SyncSender<Job>,
}

impl CpuPool {
    /// Starts `threads` workers (at least one) behind a queue of `queue` waiting jobs; with a
    /// queue of 0 a job is accepted only when a worker is idle.
    ///
    /// # Panics
    /// If the OS refuses to start a thread, which at start-up leaves nothing to recover.
    pub(crate) fn new(threads: usize, queue: usize) -> Self {
        let (sender, receiver) = mpsc::sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads.max(1) {
            let receiver = Arc::clone(&receiver);
            thread::Builder::new()
                .name(format!("kino-image-{index}"))
                .spawn(move || work(&receiver))
                .expect("the OS refused to start an image worker thread");
        }
        Self { queue: sender }
    }

    /// One worker per available core, the default for `new`.
    pub(crate) fn default_threads() -> usize {
        thread::available_parallelism().map_or(1, usize::from)
    }

    /// Runs `job` on a worker and awaits its result; `Busy` if the queue is full.
    ///
    /// A job whose caller has gone away (the request was cancelled) is skipped, not run. A job
    /// that panics yields `Internal` and leaves its worker alive.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ImageError> {
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            if reply.is_closed() {
                return;
            }
            let outcome = catch_unwind(AssertUnwindSafe(job))
                .map_err(|_| ImageError::Internal("an image job panicked".to_owned()));
            // The caller may have left meanwhile; the result is then simply dropped.
            let _ = reply.send(outcome);
        });
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(ImageError::Busy),
            Err(TrySendError::Disconnected(_)) => {
                return Err(ImageError::Internal("the image workers have stopped".to_owned()));
            }
        }
        result.await.map_err(|_| ImageError::Internal("an image worker dropped its job".to_owned()))?
    }
}

impl Default for CpuPool {
    fn default() -> Self {
        Self::new(Self::default_threads(), DEFAULT_QUEUE)
    }
}

/// A worker's loop: take the next job until the pool is dropped.
fn work(receiver: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while waiting for a job, never while running one. A poisoned
        // lock cannot happen (nothing panics while holding it), but would stop this worker.
        let next = match receiver.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        match next {
            Ok(job) => job(),
            Err(mpsc::RecvError) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc as std_mpsc;

    use super::*;

    #[tokio::test]
    async fn jobs_run_off_the_calling_thread_and_return_their_result() {
        let pool = CpuPool::new(2, 4);
        let caller = thread::current().id();
        let (worker, sum) = pool.run(|| (thread::current().id(), (1..=10).sum::<u32>())).await.unwrap();
        assert_ne!(worker, caller);
        assert_eq!(sum, 55);
    }

    #[tokio::test]
    async fn full_queue_is_busy_and_queued_jobs_still_run() {
        let pool = Arc::new(CpuPool::new(1, 1));
        let (started, worker_busy) = oneshot::channel();
        let (release, gate) = std_mpsc::channel::<()>();

        // Occupy the only worker, and wait until it has really taken the job off the queue.
        let first = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move {
                pool.run(move || {
                    started.send(()).unwrap();
                    gate.recv().unwrap();
                    "first"
                })
                .await
            }
        });
        worker_busy.await.unwrap();

        // Fill the one queue slot: polling `second` once enqueues its job.
        let second = pool.run(|| "second");
        tokio::pin!(second);
        tokio::select! {
            biased;
            _ = &mut second => panic!("the second job ran while the worker was blocked"),
            () = std::future::ready(()) => {}
        }

        let third = pool.run(|| "third").await;
        assert!(matches!(third, Err(ImageError::Busy)), "{third:?}");

        release.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), "first");
        assert_eq!(second.await.unwrap(), "second");
    }

    #[tokio::test]
    async fn a_panicking_job_is_internal_and_the_worker_survives() {
        let pool = CpuPool::new(1, 1);
        let result = pool.run(|| -> u8 { panic!("boom") }).await;
        assert!(matches!(result, Err(ImageError::Internal(_))), "{result:?}");
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);
    }
}
