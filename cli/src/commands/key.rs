//! `ipsr-cli key`: author keys.

use std::path::PathBuf;

use clap::Subcommand;
use ipsr_proto::{AuthorId, AuthorKey};
use serde::Serialize;

use crate::cli::Ctx;
use crate::error::{Error, Result};
use crate::keys::{self, DEFAULT_NAME};

/// `ipsr-cli key ...`
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create a new ed25519 author key and print its author id. Also makes a
    /// recovery key (NAME-recovery) and the author's first identity
    /// document naming it an admin, posted with the first `publish` or
    /// `identity update`: keep the recovery key offline, it replaces a lost
    /// or stolen key.
    Generate {
        /// The key's name.
        #[arg(long, default_value = DEFAULT_NAME)]
        name: String,
        /// Seal the key with a passphrase (asked on the terminal, or read from IPSR_PASSPHRASE).
        #[arg(long)]
        passphrase: bool,
        /// The recovery key's name (made when it does not exist yet).
        #[arg(long, value_name = "NAME")]
        recovery: Option<String>,
        /// Make no recovery key: the key alone will sign and administer
        /// (a signer key for another author's identity, say).
        #[arg(long, conflicts_with = "recovery")]
        no_recovery: bool,
    },
    /// List the stored keys.
    List,
    /// Show a key's author id and public key.
    Show {
        /// The key's name.
        #[arg(default_value = DEFAULT_NAME)]
        name: String,
    },
    /// Import an existing ed25519 key: an OpenSSH private key or a hex seed.
    Import {
        /// The key file (e.g. ~/.ssh/id_ed25519).
        file: PathBuf,
        /// The name to store it under.
        #[arg(long, default_value = DEFAULT_NAME)]
        name: String,
        /// Seal the stored copy with a new passphrase. An encrypted OpenSSH key is
        /// sealed with the passphrase that opens it unless this asks for another.
        #[arg(long)]
        passphrase: bool,
    },
    /// Print a key's public half.
    Export {
        /// The key's name.
        #[arg(default_value = DEFAULT_NAME)]
        name: String,
        /// Export the public key (the only export offered: the secret stays in its file;
        /// without this flag the command says so).
        #[arg(long)]
        public: bool,
        /// The form: an OpenSSH public key line, the raw key in hex, or the author id.
        #[arg(long, value_enum, default_value_t = Format::Ssh)]
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Ssh,
    Hex,
    AuthorId,
}

#[derive(Debug, Serialize)]
struct Created {
    name: String,
    author: String,
    protected: bool,
    path: PathBuf,
    /// The recovery key made (or reused) with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    recovery: Option<Box<Created>>,
    /// The first identity document, waiting to be posted.
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<PathBuf>,
}

/// Runs `key`.
pub(crate) fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match args.command {
        KeyCommand::Generate {
            name,
            passphrase,
            recovery,
            no_recovery,
        } => {
            keys::check_name(&name)?;
            let recovery = (!no_recovery).then(|| recovery.unwrap_or(format!("{name}-recovery")));
            if let Some(r) = &recovery {
                keys::check_name(r)?;
            }
            let seal = || match passphrase {
                true => Seal::New,
                false => Seal::None,
            };
            let key = new_key()?;
            let mut created = store_new(ctx, &name, &key, seal())?;
            if let Some(r) = recovery {
                let (recovery_id, made) = match keys::info(&r) {
                    Ok(info) => (crate::identity::key_id(&info.author)?, None),
                    Err(_) => {
                        let rkey = new_key()?;
                        let made = store_new(ctx, &r, &rkey, seal())?;
                        (rkey.author_id(), Some(made))
                    }
                };
                let path = crate::identity::write_genesis(&name, &key, recovery_id)?;
                if !ctx.out.is_json() {
                    ctx.out.note(format!(
                        "recovery key {r:?} ({recovery_id}) is an admin of your identity: move its file off this computer and keep it safe; it replaces this key if it is lost or stolen (docs/records.md, section 10)"
                    ));
                }
                created.recovery = made.map(Box::new);
                created.identity = Some(path);
            }
            ctx.out
                .emit(&created, |w| writeln!(w, "{}", created.author))
        }
        KeyCommand::Import {
            file,
            name,
            passphrase,
        } => {
            keys::check_name(&name)?;
            let foreign = keys::read_foreign(&file)?;
            // A key that was encrypted is never stored in the clear.
            let seal = match (passphrase, foreign.passphrase) {
                (true, _) => Seal::New,
                (false, Some(same)) => {
                    if !ctx.out.is_json() {
                        ctx.out.note(format!(
                            "{} is encrypted: the stored copy is sealed with the same passphrase",
                            file.display()
                        ));
                    }
                    Seal::With(same)
                }
                (false, None) => Seal::None,
            };
            let created = store_new(ctx, &name, &foreign.key, seal)?;
            ctx.out
                .emit(&created, |w| writeln!(w, "{}", created.author))
        }
        KeyCommand::List => {
            let list = keys::list()?;
            ctx.out.emit(&list, |w| {
                if list.is_empty() {
                    writeln!(w, "no keys yet; create one with `ipsr-cli key generate`")?;
                }
                for k in &list {
                    let lock = if k.protected { " (passphrase)" } else { "" };
                    writeln!(w, "{:<16} {}{lock}", k.name, k.author)?;
                }
                Ok(())
            })
        }
        KeyCommand::Show { name } => {
            let info = keys::info(&name)?;
            ctx.out.emit(&info, |w| {
                writeln!(w, "name:       {}", info.name)?;
                writeln!(w, "author:     {}", info.author)?;
                writeln!(w, "public key: {} (ed25519, hex)", info.public_key)?;
                writeln!(
                    w,
                    "protected:  {}",
                    if info.protected { "yes" } else { "no" }
                )?;
                writeln!(w, "file:       {}", info.path.display())
            })
        }
        KeyCommand::Export {
            name,
            public,
            format,
        } => {
            let info = keys::info(&name)?;
            if !public {
                return Err(Error::Usage(format!(
                    "key export prints only the public half of a key: add --public (ipsr-cli key export {name} --public); secret keys are not exported, copy the key file instead: {}",
                    info.path.display()
                )));
            }
            let author: AuthorId = info
                .author
                .parse()
                .map_err(|e| Error::Other(format!("key {name:?}: {e}")))?;
            let text = match format {
                Format::Ssh => keys::openssh_public(&author, &format!("ipsr:{name}"))?,
                Format::Hex => info.public_key.clone(),
                Format::AuthorId => info.author.clone(),
            };
            #[derive(Serialize)]
            struct Exported<'a> {
                name: &'a str,
                author: &'a str,
                public_key: &'a str,
                openssh: String,
            }
            let json = Exported {
                name: &name,
                author: &info.author,
                public_key: &info.public_key,
                openssh: keys::openssh_public(&author, &format!("ipsr:{name}"))?,
            };
            ctx.out.emit(&json, |w| writeln!(w, "{text}"))
        }
    }
}

/// How a new key file is sealed.
enum Seal {
    /// Not at all.
    None,
    /// With a new passphrase (never empty).
    New,
    /// With this passphrase, the one that opened an encrypted key file.
    With(String),
}

fn new_key() -> Result<AuthorKey> {
    AuthorKey::generate().map_err(|e| Error::Other(format!("the OS random source: {e}")))
}

/// Stores a new key file (refusing a name that is taken).
fn store_new(ctx: &Ctx, name: &str, key: &AuthorKey, seal: Seal) -> Result<Created> {
    // Refuse early, before asking for a passphrase, when the name is taken.
    if keys::info(name).is_ok() {
        return Err(Error::Conflict(format!(
            "a key named {name:?} already exists; choose another --name"
        )));
    }
    let pass = match seal {
        Seal::None => None,
        Seal::New => Some(keys::new_passphrase()?),
        Seal::With(pass) => Some(pass),
    };
    let path = keys::store(name, key, pass.as_deref())?;
    let created = Created {
        name: name.to_owned(),
        author: key.author_id().to_string(),
        protected: pass.is_some(),
        path: path.clone(),
        recovery: None,
        identity: None,
    };
    if !ctx.out.is_json() {
        ctx.out
            .note(format!("key {name:?} saved to {}", path.display()));
    }
    Ok(created)
}
