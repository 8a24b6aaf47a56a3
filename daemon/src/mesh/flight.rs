//! A connection's routed calls in flight, capped: each call holds an [`InFlight`] until it is
//! answered, failed or expired.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// One more call on `count`, unless `max` are in flight already.
    pub fn take(count: &Arc<AtomicUsize>, max: usize) -> Option<InFlight> {
        count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
        Some(InFlight(count.clone()))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn caps_and_gives_back() {
        let count = Default::default();
        let a = super::InFlight::take(&count, 2).unwrap();
        let _b = super::InFlight::take(&count, 2).unwrap();
        assert!(super::InFlight::take(&count, 2).is_none());
        drop(a);
        assert!(super::InFlight::take(&count, 2).is_some());
    }
}
