//! A value a function reads at start and again on a TTL: a secret, the company registry. One re-read
//! at a time; a re-read that fails keeps the last good value, and is tried again after another TTL,
//! so that an outage of the service behind it never drops what the function already knows.

use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

pub struct Refreshing<T> {
    ttl: Duration,
    cached: RwLock<(Arc<T>, Instant)>,
    refreshing: tokio::sync::Mutex<()>,
}

impl<T: Send + Sync> Refreshing<T> {
    /// The value as read at start.
    pub fn new(value: T, ttl: Duration) -> Self {
        Self {
            ttl,
            cached: RwLock::new((Arc::new(value), Instant::now())),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// The cached value, read again first with `read` when older than the TTL. A read that fails
    /// is handed to `kept` (to log) and the last good value stays.
    pub async fn current<E, F>(&self, read: impl FnOnce() -> F, kept: impl FnOnce(E)) -> Arc<T>
    where
        F: Future<Output = Result<T, E>>,
    {
        if let Some(value) = self.fresh() {
            return value;
        }
        let _one_read_at_a_time = self.refreshing.lock().await;
        if let Some(value) = self.fresh() {
            return value;
        }
        let read = read().await;
        let mut cached = self.cached.write().unwrap_or_else(PoisonError::into_inner);
        match read {
            Ok(value) => cached.0 = Arc::new(value),
            Err(error) => kept(error),
        }
        cached.1 = Instant::now();
        Arc::clone(&cached.0)
    }

    fn fresh(&self) -> Option<Arc<T>> {
        let cached = self.cached.read().unwrap_or_else(PoisonError::into_inner);
        (cached.1.elapsed() < self.ttl).then(|| Arc::clone(&cached.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_value_is_read_again_only_after_its_ttl_and_a_failed_read_keeps_the_last_good_one() {
        let value = Refreshing::new(1, Duration::from_millis(30));
        let never = || async { Err::<i32, &str>("not due") };
        assert_eq!(*value.current(never, |_| panic!("not read")).await, 1);
        tokio::time::sleep(Duration::from_millis(40)).await;
        let mut kept = None;
        let outage = || async { Err::<i32, &str>("service down") };
        assert_eq!(*value.current(outage, |e| kept = Some(e)).await, 1);
        assert_eq!(kept, Some("service down"), "the failure is told");
        assert_eq!(
            *value.current(never, |_| panic!("not read")).await,
            1,
            "and not tried again before another TTL"
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
        let rotated = || async { Ok::<i32, &str>(2) };
        assert_eq!(*value.current(rotated, |_| ()).await, 2);
    }
}
