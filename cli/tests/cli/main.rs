//! Transcript tests of the `ipsr-cli` binary against a node started in this
//! process (`ipsr_node::spawn` + `serve_api` on 127.0.0.1:0, temp dirs),
//! and against gateways over that node (`ipsr_gateway::serve`), or a warp
//! server that lies. Everything stops when the test ends, also when it
//! fails (the runtime is dropped with the `Env`). Each transcript is what a
//! user types and sees.
//!
//! One test binary, a module per area:
//!
//! | module | what |
//! |---|---|
//! | `common` | `Env`: a node, a config dir and a work dir; the fixtures |
//! | `node` | keys, publish, info, download, yank, add and the exit codes, through a node |
//! | `keys` | key import and export, passphrases |
//! | `gateway` | the same through gateways, and a gateway that lies |
//! | `apk` | `publish` checks an APK against its manifest |
//! | `completions` | the completion scripts, run by bash, zsh and fish |
//! | `json_errors` | `--json` failures as a JSON object on standard output |
//! | `mixup` | a gateway given as the node and the reverse; addresses without a scheme |
//! | `manifest` | `publish` takes package, version, permissions and ABIs from an APK; metadata errors |
//! | `identity` | identities: a stolen signer key revoked, a release re-signed, two of three signers |
//! | `yank` | yanking a version that is already yanked |

#![allow(clippy::unwrap_used)]

mod apk;
mod common;
mod completions;
mod gateway;
mod identity;
mod json_errors;
mod keys;
mod manifest;
mod mixup;
mod node;
mod yank;
