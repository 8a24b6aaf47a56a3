//! When pending calls expire, ordered by time. One task sleeps until the earliest deadline and
//! is woken only when a deadline earlier than the one it sleeps for arrives, so a steady stream
//! of calls costs no wake-ups and an idle daemon has no timer at all.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Default)]
pub struct Deadlines {
    state: Mutex<State>,
    earlier: Notify,
}

#[derive(Default)]
struct State {
    due: BTreeSet<(Instant, u64)>,
    /// What the expiring task sleeps until (none: it waits for a first deadline).
    armed: Option<Instant>,
}

impl Deadlines {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Each update is one insert or remove: a poisoned set is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn insert(&self, at: Instant, id: u64) {
        let mut state = self.lock();
        state.due.insert((at, id));
        let earlier = state.armed.is_none_or(|armed| at < armed);
        if earlier {
            state.armed = Some(at);
        }
        drop(state);
        if earlier {
            self.earlier.notify_one();
        }
    }

    pub fn remove(&self, at: Instant, id: u64) {
        self.lock().due.remove(&(at, id));
    }

    /// Waits for the next deadline to pass and returns the calls due by then (possibly none,
    /// when the call it slept for was answered meanwhile).
    pub async fn next_due(&self) -> Vec<u64> {
        loop {
            let first = {
                let mut state = self.lock();
                state.armed = state.due.first().map(|(at, _)| *at);
                state.armed
            };
            // A deadline inserted after the look leaves a permit in `earlier`: not missed.
            match first {
                None => self.earlier.notified().await,
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = self.earlier.notified() => continue,
                    }
                    let now = Instant::now();
                    let mut state = self.lock();
                    let later = state.due.split_off(&(now, u64::MAX));
                    let expired = std::mem::replace(&mut state.due, later);
                    state.armed = None;
                    return expired.into_iter().map(|(_, id)| id).collect();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Deadlines;
    use std::time::Duration;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn wakes_for_the_earliest_deadline_even_if_it_comes_later() {
        let deadlines = std::sync::Arc::new(Deadlines::default());
        let start = Instant::now();
        deadlines.insert(start + Duration::from_secs(30), 1);
        let waiter = tokio::spawn({
            let d = deadlines.clone();
            async move { d.next_due().await }
        });
        tokio::task::yield_now().await;
        deadlines.insert(start + Duration::from_secs(1), 2);
        deadlines.insert(start + Duration::from_secs(2), 3);
        deadlines.remove(start + Duration::from_secs(2), 3);
        assert_eq!(waiter.await.unwrap(), vec![2]);
        assert!(start.elapsed() >= Duration::from_secs(1) && start.elapsed() < Duration::from_secs(30));
        // Armed for 1, which is answered meanwhile; a later deadline does not wake the task, and
        // the wake-up for 1 finds nothing due.
        let waiter = tokio::spawn({
            let d = deadlines.clone();
            async move { d.next_due().await }
        });
        tokio::task::yield_now().await;
        deadlines.remove(start + Duration::from_secs(30), 1);
        deadlines.insert(start + Duration::from_secs(40), 4);
        assert_eq!(waiter.await.unwrap(), Vec::<u64>::new());
        assert_eq!(start.elapsed().as_secs(), 30);
        assert_eq!(deadlines.next_due().await, vec![4]);
        assert_eq!(start.elapsed().as_secs(), 40);
    }
}
