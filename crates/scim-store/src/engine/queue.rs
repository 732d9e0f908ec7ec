//! The store's one queue/worker primitive.
//!
//! Every thread the store runs (the readers, SQLite's writer,
//! PostgreSQL's User writers) is a [`Workers`] thread: it waits for a job
//! on one shared channel, and hands it to its handler together with
//! [`Behind`], through which the handler may take the jobs queued behind
//! it without waiting (to answer several lookups with one statement, or to
//! run several writes in one transaction). A thread that finishes takes
//! the next job without being woken while jobs keep coming, which is what
//! the store has its own threads for: tokio's blocking pool wakes a thread
//! per task (docs/BENCHMARKS.md).
//!
//! How long each job waited in the queue is recorded here too
//! (`scimd_store_queue_wait_seconds{queue}`, `queue` being the threads'
//! name).
//!
//! Panics are handled here and nowhere else:
//! - [`catch`] runs a caller's closure (a read, a write, an edit) and turns
//!   its panic into `StoreError::Internal`, logged once;
//! - a handler that panics anyway (a bug in the store itself) loses the
//!   answers of the jobs it held (their callers get "stopped before
//!   answering"), and its thread goes on with the next job.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use crate::error::StoreError;

/// A channel and the threads that take jobs from it. Dropping it closes
/// the channel: the threads finish what was queued and exit (they are not
/// joined, so the last `Store` may be dropped anywhere, even on one of
/// them).
pub(crate) struct Workers<J> {
    sender: Sender<(Instant, J)>,
}

/// The jobs queued behind the one a handler was given.
pub(crate) struct Behind<'a, J> {
    receiver: &'a Receiver<(Instant, J)>,
    wait: &'a metrics::Histogram,
}

impl<J> Behind<'_, J> {
    /// The next job queued, if one is waiting (never waits).
    pub(crate) fn next(&mut self) -> Option<J> {
        let (queued, job) = self.receiver.try_recv().ok()?;
        self.wait.record(queued.elapsed());
        Some(job)
    }
}

impl<J: Send + 'static> Workers<J> {
    /// Starts `threads` threads named `name-N`; thread N runs the handler
    /// `handler(N)` makes, once per job it receives.
    pub(crate) fn start<H>(
        name: &'static str,
        threads: usize,
        mut handler: impl FnMut(usize) -> H,
    ) -> Result<Workers<J>, StoreError>
    where
        H: FnMut(J, &mut Behind<'_, J>) + Send + 'static,
    {
        let (sender, receiver) = crossbeam_channel::unbounded::<(Instant, J)>();
        let wait = metrics::histogram!("scimd_store_queue_wait_seconds", "queue" => name);
        for i in 0..threads.max(1) {
            let receiver = receiver.clone();
            let mut handle = handler(i);
            let thread = format!("{name}-{i}");
            let wait = wait.clone();
            std::thread::Builder::new()
                .name(thread.clone())
                .spawn(move || {
                    while let Ok((queued, job)) = receiver.recv() {
                        wait.record(queued.elapsed());
                        let mut behind = Behind {
                            receiver: &receiver,
                            wait: &wait,
                        };
                        if let Err(panic) =
                            catch_unwind(AssertUnwindSafe(|| handle(job, &mut behind)))
                        {
                            tracing::error!(
                                thread,
                                panic = panic_message(&*panic),
                                "a store thread panicked; the answers it held are lost"
                            );
                        }
                    }
                })
                .map_err(|e| StoreError::internal("cannot start a store thread", &e))?;
        }
        Ok(Workers { sender })
    }

    /// Queues `job`; gives it back when the threads have stopped.
    pub(crate) fn push(&self, job: J) -> Result<(), J> {
        self.sender
            .send((Instant::now(), job))
            .map_err(|e| e.into_inner().1)
    }
}

/// Runs `f`, a caller's closure; a panic becomes `StoreError::Internal`
/// (logged here, with `what` failed, e.g. "read" or "write").
pub(crate) fn catch<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        tracing::error!(panic = panic_message(&*panic), "a queued {what} panicked");
        Err(StoreError::Internal(format!(
            "the {what} failed unexpectedly (it panicked)"
        )))
    })
}

/// The text of a panic's payload, when it has one.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_handler_takes_the_jobs_queued_behind_its_first() {
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let (out_tx, out_rx) = mpsc::channel::<Vec<u32>>();
        let gate = std::sync::Mutex::new(Some(gate_rx));
        let workers = Workers::start("test-queue", 1, |_| {
            let gate = gate.lock().unwrap().take();
            let out = out_tx.clone();
            move |first: u32, behind: &mut Behind<'_, u32>| {
                // The first job waits until the others are queued.
                if let Some(gate) = &gate {
                    let _ = gate.recv();
                }
                let mut taken = vec![first];
                while let Some(next) = behind.next() {
                    taken.push(next);
                }
                out.send(taken).unwrap();
            }
        })
        .unwrap();
        for i in 0..4 {
            workers.push(i).unwrap();
        }
        gate_tx.send(()).unwrap();
        assert_eq!(out_rx.recv().unwrap(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_panicking_handler_loses_its_job_and_its_thread_goes_on() {
        let (out_tx, out_rx) = mpsc::channel::<u32>();
        let workers = Workers::start("test-panic", 1, |_| {
            let out = out_tx.clone();
            move |job: u32, _: &mut Behind<'_, u32>| {
                assert_ne!(job, 1, "job 1 panics");
                out.send(job).unwrap();
            }
        })
        .unwrap();
        for i in 0..3 {
            workers.push(i).unwrap();
        }
        assert_eq!(out_rx.recv().unwrap(), 0);
        assert_eq!(out_rx.recv().unwrap(), 2);
    }

    #[test]
    fn catch_turns_a_panic_into_an_internal_error() {
        let r: Result<(), StoreError> = catch("read", || panic!("boom"));
        assert!(matches!(r, Err(StoreError::Internal(_))), "{r:?}");
        assert_eq!(catch("read", || Ok(7)).unwrap(), 7);
    }
}
