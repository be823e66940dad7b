//! An HTTP client for tests, and request bodies.

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

/// A `multipart/form-data` body of `parts` (name, media type, bytes), in
/// order, and the `Content-Type` to send it with.
pub fn multipart(parts: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    const BOUNDARY: &str = "ipsr-test-boundary-7d1a";
    let mut body = Vec::new();
    for (name, media_type, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"{name}.bin\"\r\nContent-Type: {media_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

/// A `multipart/form-data` body of `parts` (name, bytes) in order, each
/// `application/octet-stream`, and the `Content-Type` to send it with.
pub fn form(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let parts: Vec<(&str, &str, &[u8])> = parts
        .iter()
        .map(|(name, bytes)| (*name, "application/octet-stream", *bytes))
        .collect();
    multipart(&parts)
}
