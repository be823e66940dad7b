//! An HTTP client for tests.

use std::time::Duration;

/// The timeout of [`agent`]: of a whole request, answer included.
pub const AGENT_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP client with a short timeout ([`AGENT_TIMEOUT`]) that reports
/// statuses as values, not errors.
pub fn agent() -> ureq::Agent {
    agent_with_timeout(AGENT_TIMEOUT)
}

/// [`agent`] with another timeout, for large bodies and slow answers.
pub fn agent_with_timeout(limit: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(limit))
        .build()
        .into()
}
