//! Bounded waits: every test waits for one thing at most [`TIMEOUT`]
//! unless it says otherwise.

use std::time::{Duration, Instant};

/// The longest a test waits for any one thing.
pub const TIMEOUT: Duration = Duration::from_secs(90);

/// Polls `check` every 100 ms until it gives a value or `limit` passes
/// (then `None`: the caller says what did not happen).
pub fn poll<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// [`poll`] within [`TIMEOUT`]: the value `check` gives; panics with
/// "timed out waiting for `what`" when none comes.
pub fn wait_for<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    poll(TIMEOUT, check).unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// Polls `check` every 50 ms until it holds; panics with "timed out
/// waiting until `what`" after [`TIMEOUT`].
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_gives_the_value_or_none_after_the_limit() {
        let mut n = 0;
        assert_eq!(
            poll(Duration::from_secs(5), || {
                n += 1;
                (n == 3).then_some(n)
            }),
            Some(3)
        );
        assert_eq!(poll(Duration::from_millis(150), || None::<()>), None);
        assert_eq!(wait_for("a value", || Some(7)), 7);
    }

    #[tokio::test]
    async fn wait_until_returns_once_it_holds() {
        let mut n = 0;
        wait_until("the third call", || {
            n += 1;
            std::future::ready(n == 3)
        })
        .await;
        assert_eq!(n, 3);
    }
}
