//! An HTTP client for tests, and the bodies they send.

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

/// A `multipart/form-data` body of `parts` (name, bytes) in order, each
/// with a file name and `application/octet-stream`: its `Content-Type`
/// (with the boundary) and its bytes.
pub fn form(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "ipsr-test-boundary-7d1a";
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"{name}.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
