//! Wake-ups inside one process: "a job is ready" for idle workers and "job X has a new event"
//! for event streams and running jobs. With PostgreSQL the same signals also arrive from other
//! processes through `LISTEN/NOTIFY` (see [`super::listen`]).

use crate::domain::JobId;
use tokio::sync::broadcast;

/// Signals kept for a receiver that falls behind; a lagging receiver treats the gap as "look
/// again", so nothing is lost but a little work.
const CAPACITY: usize = 1024;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A job became ready to run (new, retried, handed back).
    JobsReady,
    /// A job has a new event (state change, progress, cancel request).
    Event(JobId),
}

/// A cheap, cloneable broadcaster of [`Signal`]s.
#[derive(Debug, Clone)]
pub struct Signals(broadcast::Sender<Signal>);

impl Default for Signals {
    fn default() -> Self {
        Self(broadcast::channel(CAPACITY).0)
    }
}

impl Signals {
    /// Sends a signal to everyone listening now; nobody listening is fine.
    pub fn send(&self, signal: Signal) {
        let _ = self.0.send(signal);
    }

    /// A receiver of the signals sent from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.0.subscribe()
    }
}
