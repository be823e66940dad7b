//! One module per subcommand, each with its `Args` and a `run`.

pub(crate) mod add;
pub(crate) mod completions;
pub(crate) mod download;
pub(crate) mod identity;
pub(crate) mod info;
pub(crate) mod key;
pub(crate) mod ls;
pub(crate) mod node;
pub(crate) mod publish;
pub(crate) mod resign;
pub(crate) mod search;
pub(crate) mod sign;
pub(crate) mod verify;
pub(crate) mod yank;
