//! Size limits of the record format. Every one is part of the protocol: a
//! record that exceeds any of them is rejected by every node.

/// Largest encoded [`SignedRecord`](crate::SignedRecord), checked before parsing.
pub const MAX_RECORD_BYTES: usize = 10 * 1024;
/// Largest package name, in bytes.
pub const MAX_PACKAGE_NAME: usize = 255;
/// Largest version string, in bytes.
pub const MAX_VERSION: usize = 64;
/// Largest file name, in bytes.
pub const MAX_FILE_NAME: usize = 255;
/// Largest platform name, in bytes.
pub const MAX_PLATFORM: usize = 32;
/// Largest title, in bytes (one line).
pub const MAX_TITLE: usize = 100;
/// Largest summary, in bytes (one line).
pub const MAX_SUMMARY: usize = 300;
/// Largest description, in bytes (newlines and tabs allowed).
pub const MAX_DESCRIPTION: usize = 4000;
/// Largest license expression, in bytes.
pub const MAX_LICENSE: usize = 100;
/// Largest URL, in bytes.
pub const MAX_URL: usize = 512;
/// Most categories per release.
pub const MAX_CATEGORIES: usize = 10;
/// Largest category, in bytes.
pub const MAX_CATEGORY: usize = 32;
/// Most requested permissions per release.
pub const MAX_PERMISSIONS: usize = 100;
/// Largest permission name, in bytes.
pub const MAX_PERMISSION: usize = 128;
/// Longest `metadata.changelog`, in bytes.
pub const MAX_CHANGELOG: usize = 2000;
/// Most entries in `metadata.native_code`.
pub const MAX_NATIVE_CODE: usize = 8;
/// Longest ABI name in `metadata.native_code`, in bytes.
pub const MAX_ABI: usize = 32;
/// Most screenshots per release.
pub const MAX_SCREENSHOTS: usize = 10;
/// Largest yank reason, in bytes.
pub const MAX_REASON: usize = 500;
/// How far in the future `created_at` may be, in milliseconds (one hour).
pub const MAX_CLOCK_SKEW_MS: u64 = 60 * 60 * 1000;
/// How many distinct CIDs a node remembers per release as conflict evidence.
pub const MAX_TRACKED_CIDS: usize = 8;
/// Most signatures on one signed record (the multi form of the envelope).
pub const MAX_SIGNATURES: usize = 16;
/// Most signer keys, and most admin keys, in an identity document.
pub const MAX_IDENTITY_KEYS: usize = 16;
/// Most URLs in an identity document.
pub const MAX_IDENTITY_URLS: usize = 4;
/// Largest display name in an identity document, in bytes (one line).
pub const MAX_IDENTITY_NAME: usize = 100;
/// Most certificates in a release's `signing_cert_lineage`.
pub const MAX_CERT_LINEAGE: usize = 8;
/// Most APK signing certificates an identity document vouches for.
pub const MAX_APK_CERTS: usize = 8;
/// Most identity documents a node keeps per author.
pub const MAX_IDENTITY_DOCS: usize = 64;
