//! When pending calls expire, ordered by time. One task sleeps until the earliest deadline and
//! is woken only when an earlier one arrives, so an idle daemon has no timer at all.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Default)]
pub struct Deadlines {
    due: Mutex<BTreeSet<(Instant, u64)>>,
    earlier: Notify,
}

impl Deadlines {
    fn lock(&self) -> MutexGuard<'_, BTreeSet<(Instant, u64)>> {
        // Each update is one insert or remove: a poisoned set is still consistent.
        self.due.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn insert(&self, at: Instant, id: u64) {
        let mut due = self.lock();
        let earliest = due.first().is_none_or(|first| at < first.0);
        due.insert((at, id));
        drop(due);
        if earliest {
            self.earlier.notify_one();
        }
    }

    pub fn remove(&self, at: Instant, id: u64) {
        self.lock().remove(&(at, id));
    }

    /// Waits for the next deadline to pass and returns the calls due by then.
    pub async fn next_due(&self) -> Vec<u64> {
        loop {
            let first = self.lock().first().map(|(at, _)| *at);
            // A deadline inserted after the look leaves a permit in `earlier`: not missed.
            match first {
                None => self.earlier.notified().await,
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = self.earlier.notified() => continue,
                    }
                    let now = Instant::now();
                    let mut due = self.lock();
                    let later = due.split_off(&(now, u64::MAX));
                    let expired = std::mem::replace(&mut *due, later);
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
        assert_eq!(deadlines.next_due().await, vec![1]);
    }
}
