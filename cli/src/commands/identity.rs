//! `ipsr-cli identity`: show and change an author's identity document
//! (`docs/records.md`, section 8).

use std::collections::BTreeSet;
use std::path::PathBuf;

use base64::Engine as _;
use clap::Subcommand;
use ipsr_proto::{AuthorId, AuthorKey, Authority, Identity, SignedRecord};
use serde::Serialize;

use crate::cli::Ctx;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::identity::{self, key_id};
use crate::keys::{self, DEFAULT_NAME};

/// `ipsr-cli identity ...`
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: IdentityCommand,
}

#[derive(Debug, Subcommand)]
enum IdentityCommand {
    /// Show an author's identity in force: who signs releases, who may
    /// change the identity, and the profile (checked from the author id).
    Show {
        /// The author (default: the author of --key).
        author: Option<AuthorId>,
        /// The key whose author to show when no AUTHOR is given.
        #[arg(long, default_value = DEFAULT_NAME, value_name = "NAME")]
        key: String,
    },
    /// Publish the next identity document, signed by admin keys. KEY is a
    /// stored key's name or an author id (k51...).
    Update(Box<UpdateArgs>),
}

#[derive(Debug, clap::Args)]
struct UpdateArgs {
    /// The author (default: the author of the first --key).
    #[arg(long)]
    author: Option<AuthorId>,
    /// Let this key sign releases and yanks.
    #[arg(long, value_name = "KEY")]
    add_signer: Vec<String>,
    /// Stop counting this key's signatures (on everything it signed).
    #[arg(long, value_name = "KEY")]
    remove_signer: Vec<String>,
    /// How many signers a release or yank needs.
    #[arg(long, value_name = "N")]
    threshold: Option<u32>,
    /// Let this key sign the next identity documents.
    #[arg(long, value_name = "KEY")]
    add_admin: Vec<String>,
    /// Stop this key from signing identity documents.
    #[arg(long, value_name = "KEY")]
    remove_admin: Vec<String>,
    /// How many admins the next identity document needs.
    #[arg(long, value_name = "N")]
    admin_threshold: Option<u32>,
    /// The display name pages show.
    #[arg(long, value_name = "TEXT")]
    name: Option<String>,
    /// A link for pages (repeat for more; replaces the list).
    #[arg(long, value_name = "URL")]
    url: Vec<String>,
    /// Vouch for an APK signing certificate (its SHA-256, 64 hex digits),
    /// e.g. after rotating the app's signing key.
    #[arg(long, value_name = "SHA256")]
    add_apk_cert: Vec<String>,
    /// Stop vouching for an APK signing certificate.
    #[arg(long, value_name = "SHA256")]
    remove_apk_cert: Vec<String>,
    /// An admin key to sign with (repeat when the admin threshold asks for
    /// more than one).
    #[arg(long = "key", value_name = "NAME", required = true)]
    keys: Vec<String>,
    /// Write the signed document to FILE instead of publishing it, for
    /// other admins to add their signatures (`ipsr-cli sign FILE`) before
    /// `ipsr-cli post FILE`.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Shown {
    author: AuthorId,
    identity_id: Option<String>,
    document: Identity,
    signed_by: Vec<AuthorId>,
    forks: usize,
}

#[derive(Debug, Serialize)]
struct Updated {
    author: AuthorId,
    identity_id: String,
    record_id: String,
    change: Option<String>,
    file: Option<PathBuf>,
    /// Releases whose record in force no longer has enough signatures.
    to_resign: Vec<String>,
}

/// Runs `identity`.
pub(crate) fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match args.command {
        IdentityCommand::Show { author, key } => {
            let author = match author {
                Some(a) => a,
                None => key_id(&key)?,
            };
            let client = ctx.client()?;
            let state = identity::fetch(&client, &author)?;
            let head = state.head();
            let shown = Shown {
                author,
                identity_id: head.map(|d| d.identity_id().to_string()),
                document: state.identity(),
                signed_by: head
                    .map(|d| d.approvals().iter().map(|a| a.key_id()).collect())
                    .unwrap_or_default(),
                forks: state.forks().len(),
            };
            ctx.out.emit(&shown, |w| {
                let d = &shown.document;
                writeln!(w, "author:    {author}")?;
                if shown.identity_id.is_none() {
                    writeln!(w, "document:  none (the author key alone signs and administers)")?;
                }
                if !d.name.is_empty() {
                    writeln!(w, "name:      {}", d.name)?;
                }
                for url in &d.urls {
                    writeln!(w, "url:       {url}")?;
                }
                writeln!(w, "signers:   {} of {}", d.threshold, d.signers.len())?;
                for k in &d.signers {
                    writeln!(w, "  {k}")?;
                }
                writeln!(w, "admins:    {} of {}", d.admin_threshold, d.admins.len())?;
                for k in &d.admins {
                    writeln!(w, "  {k}")?;
                }
                for c in &d.apk_certs {
                    writeln!(w, "APK cert:  {}", hex::encode(c))?;
                }
                if let Some(id) = &shown.identity_id {
                    writeln!(w, "document:  {id} (seq {})", d.seq)?;
                }
                if shown.forks > 0 {
                    writeln!(w, "DISPUTED:  two documents follow the same one; see docs/records.md, section 10")?;
                }
                Ok(())
            })
        }
        IdentityCommand::Update(args) => update(ctx, *args),
    }
}

fn update(ctx: &Ctx, args: UpdateArgs) -> Result<()> {
    let signers: Vec<AuthorKey> = args
        .keys
        .iter()
        .map(|name| keys::load(name))
        .collect::<Result<_>>()?;
    let author = match args.author {
        Some(a) => a,
        None => signers[0].author_id(),
    };
    let client = ctx.client()?;
    identity::post_waiting(&client, &args.keys)?;
    let state = identity::fetch(&client, &author)?;
    let current = state.identity();
    let mut next = current.next(state.head().map(|d| d.identity_id()));
    edit_keys(&mut next.signers, &args.add_signer, &args.remove_signer)?;
    edit_keys(&mut next.admins, &args.add_admin, &args.remove_admin)?;
    if let Some(t) = args.threshold {
        next.threshold = t;
    }
    if let Some(t) = args.admin_threshold {
        next.admin_threshold = t;
    }
    next.threshold = next
        .threshold
        .min(u32::try_from(next.signers.len()).unwrap_or(u32::MAX));
    next.admin_threshold = next
        .admin_threshold
        .min(u32::try_from(next.admins.len()).unwrap_or(u32::MAX));
    if let Some(name) = args.name {
        next.name = name;
    }
    if !args.url.is_empty() {
        next.urls = args.url;
    }
    let mut certs: BTreeSet<[u8; 32]> = next.apk_certs.iter().copied().collect();
    for text in &args.add_apk_cert {
        certs.insert(cert_hash(text)?);
    }
    for text in &args.remove_apk_cert {
        if !certs.remove(&cert_hash(text)?) {
            return Err(Error::Usage(format!(
                "--remove-apk-cert {text}: not in the identity's list"
            )));
        }
    }
    next.apk_certs = certs.into_iter().collect();
    next.validate()
        .map_err(|e| Error::Usage(format!("the new identity: {e}")))?;
    let admins = current.admin_authority();
    let signing: Vec<&AuthorKey> = signers.iter().collect();
    let counted = signing
        .iter()
        .filter(|k| admins.is_signer(k.author_id().as_bytes()))
        .count();
    if counted < current.admin_threshold as usize {
        return Err(Error::Usage(format!(
            "{author}: the identity in force needs {} of its admins to sign the next document, and --key gives {counted}",
            current.admin_threshold
        )));
    }
    let signed = next
        .clone()
        .sign(&signing)
        .map_err(|e| Error::Usage(format!("the new identity: {e}")))?;

    // What stops counting: keep a copy of each release whose record in
    // force would fall short, for `ipsr-cli resign`.
    let to_resign = match args.out {
        Some(_) => Vec::new(),
        None => keep_short(&client, &author, &next.authority())?,
    };
    let mut out = Updated {
        author,
        identity_id: signed.identity_id().to_string(),
        record_id: signed.id().to_string(),
        change: None,
        file: None,
        to_resign,
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, signed.to_bytes()).map_err(|e| Error::io(path.display(), e))?;
            out.file = Some(path.clone());
        }
        None => {
            let posted =
                client.post_record(&format!("identity of {author}"), &signed.to_bytes())?;
            if !matches!(posted.change.as_str(), "new" | "replaced" | "duplicate") {
                return Err(Error::Conflict(format!(
                    "{author}: {} did not take the document (change: {}); is another document newer?",
                    client.the(),
                    posted.change
                )));
            }
            out.change = Some(posted.change);
        }
    }
    ctx.out.emit(&out, |w| {
        match &out.file {
            Some(f) => writeln!(
                w,
                "signed the next identity of {author} into {}; add signatures with `ipsr-cli sign {} --key NAME`, then `ipsr-cli post {}`",
                f.display(),
                f.display(),
                f.display()
            )?,
            None => writeln!(w, "updated the identity of {author}")?,
        }
        writeln!(w, "document: {}", out.identity_id)?;
        for spec in &out.to_resign {
            writeln!(w, "no longer signed enough: {spec}; to keep it, `ipsr-cli resign {spec} --key NAME`")?;
        }
        Ok(())
    })
}

/// A certificate's SHA-256 given as 64 hex digits.
fn cert_hash(text: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).map_err(|_| {
        Error::Usage(format!(
            "{text}: an APK certificate's SHA-256 is 64 hex digits"
        ))
    })?;
    Ok(out)
}

/// Adds and removes keys (each a key name or an author id), keeping the
/// list in increasing byte order.
fn edit_keys(list: &mut Vec<AuthorId>, add: &[String], remove: &[String]) -> Result<()> {
    let mut set: BTreeSet<[u8; 32]> = list.iter().map(|k| *k.as_bytes()).collect();
    for k in add {
        set.insert(*key_id(k)?.as_bytes());
    }
    for k in remove {
        let id = key_id(k)?;
        if !set.remove(id.as_bytes()) {
            return Err(Error::Usage(format!("{k}: not in the identity's list")));
        }
    }
    *list = set
        .into_iter()
        .map(|raw| AuthorId::from_bytes(&raw).map_err(|e| Error::Other(e.to_string())))
        .collect::<Result<_>>()?;
    Ok(())
}

/// The author's releases whose record in force (as the server shows it)
/// would not meet `next`: each kept for `resign`, returned as
/// `AUTHOR/PACKAGE@VERSION`.
fn keep_short(client: &Client, author: &AuthorId, next: &Authority) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for package in client.author(&author.to_string())?.packages {
        let answer = client.package(&author.to_string(), &package)?;
        for entry in &answer.versions {
            let release = client.release(&author.to_string(), &package, &entry.version)?;
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&release.record)
            else {
                continue;
            };
            let Ok(record) = SignedRecord::from_bytes(&bytes).and_then(SignedRecord::verify) else {
                continue;
            };
            if !next.is_met(record.approvals()) {
                identity::keep_for_resign(&record)?;
                out.push(format!("{author}/{package}@{}", entry.version));
            }
        }
    }
    Ok(out)
}
