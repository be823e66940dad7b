//! `ipsr-cli info`: a package, or one release with its record verified.

use std::io::Write;

use serde::Serialize;

use crate::check;
use crate::cli::Ctx;
use crate::client::{Package, ReleaseAnswer};
use crate::commands::download::choose;
use crate::error::Result;
use crate::spec::{PackageSpec, VersionSel};

/// `ipsr-cli info AUTHOR/PACKAGE[@VERSION]`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// AUTHOR/PACKAGE for the package, AUTHOR/PACKAGE@VERSION (or @^1.2) for one release.
    spec: PackageSpec,
}

#[derive(Debug, Serialize)]
struct ReleaseInfo<'a> {
    #[serde(flatten)]
    answer: &'a ReleaseAnswer,
    /// The record's signature and fields were checked by this CLI.
    verified: bool,
}

/// Runs `info`.
pub(crate) fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let client = ctx.client()?;
    let PackageSpec {
        author,
        package,
        version: sel,
    } = &args.spec;
    let pkg = client.package(&author.to_string(), package.as_str())?;
    if *sel == VersionSel::Newest {
        return ctx.out.emit(&pkg, |w| human_package(w, &pkg));
    }
    let version = choose(&pkg, sel, client.the())?;
    let answer = client.release(&author.to_string(), package.as_str(), &version.to_string())?;
    let authority = crate::identity::fetch(&client, author)?.authority();
    let checked = check::release(&answer, client.the(), author, package, &version, &authority)?;
    let info = ReleaseInfo {
        answer: &answer,
        verified: true,
    };
    ctx.out.emit(&info, |w| {
        let r = &checked.release;
        writeln!(w, "{author}/{package}@{version}")?;
        writeln!(
            w,
            "record:       {} (signature verified)",
            checked.record_id
        )?;
        if authority.signers.len() > 1 || authority.threshold > 1 {
            writeln!(
                w,
                "signed by:    {} of {} signers (needs {})",
                checked.signed,
                authority.signers.len(),
                authority.threshold
            )?;
        }
        writeln!(w, "cid:          {}", r.cid)?;
        writeln!(w, "size:         {}", crate::output::bytes(r.size))?;
        writeln!(w, "file name:    {}", r.file_name)?;
        writeln!(w, "platform:     {}", r.platform)?;
        writeln!(w, "version code: {}", r.version_code)?;
        writeln!(w, "signed at:    {}", crate::output::utc(r.created_at))?;
        if checked.yanked {
            let reason = checked.yank_reason.as_deref().unwrap_or("");
            writeln!(w, "yanked:       yes: {}", one_line(reason))?;
        } else {
            writeln!(w, "yanked:       no")?;
        }
        if !answer.entry.conflicting_cids.is_empty() {
            writeln!(
                w,
                "CONFLICT:     other CIDs were signed for this version: {}",
                answer.entry.conflicting_cids.join(", ")
            )?;
        }
        let m = &r.metadata;
        if let Some(cert) = m.signing_cert_sha256 {
            let cert = hex::encode(cert);
            // The certificate is the signed record's; how it follows the
            // earlier releases (rule 9) is what the server says.
            let check = answer
                .entry
                .certificate
                .as_ref()
                .filter(|c| c.sha256 == cert)
                .map_or("", |c| c.check.as_str());
            writeln!(w, "certificate:  {cert}{}", certificate_note(check))?;
        }
        for (label, value) in [
            ("title", &m.title),
            ("summary", &m.summary),
            ("license", &m.license),
        ] {
            if !value.is_empty() {
                writeln!(w, "{:<13} {}", format!("{label}:"), one_line(value))?;
            }
        }
        for (label, value) in [("homepage", &m.homepage_url), ("source", &m.source_url)] {
            if let Some(v) = value {
                writeln!(w, "{:<13} {}", format!("{label}:"), one_line(v))?;
            }
        }
        if !m.categories.is_empty() {
            writeln!(w, "categories:   {}", m.categories.join(", "))?;
        }
        if m.min_sdk > 0 || m.target_sdk > 0 {
            writeln!(
                w,
                "sdk:          min {}, target {}",
                m.min_sdk, m.target_sdk
            )?;
        }
        if !m.permissions.is_empty() {
            writeln!(w, "permissions:  {}", m.permissions.join(", "))?;
        }
        if !m.native_code.is_empty() {
            writeln!(w, "native code:  {}", m.native_code.join(", "))?;
        }
        if let Some(icon) = &m.icon {
            writeln!(w, "icon:         {icon}")?;
        }
        for s in &m.screenshots {
            writeln!(w, "screenshot:   {s}")?;
        }
        if !m.description.is_empty() {
            writeln!(w)?;
            for line in m.description.lines() {
                writeln!(w, "    {}", one_line(line))?;
            }
        }
        if !m.changelog.is_empty() {
            writeln!(w)?;
            writeln!(w, "changes:")?;
            for line in m.changelog.lines() {
                writeln!(w, "    {}", one_line(line))?;
            }
        }
        Ok(())
    })
}

fn human_package(w: &mut dyn Write, pkg: &Package) -> std::io::Result<()> {
    writeln!(w, "{}/{}", pkg.author, pkg.package)?;
    let title = pkg.metadata["title"].as_str().unwrap_or("");
    if !title.is_empty() {
        writeln!(w, "title:    {}", one_line(title))?;
    }
    let summary = pkg.metadata["summary"].as_str().unwrap_or("");
    if !summary.is_empty() {
        writeln!(w, "summary:  {}", one_line(summary))?;
    }
    writeln!(
        w,
        "newest:   {}",
        pkg.newest.as_deref().unwrap_or("(every version is yanked)")
    )?;
    // The newest release's APK certificate and its rule 9 check, as the
    // server lists them (`info @VERSION` checks them against the record).
    let newest = pkg
        .newest
        .as_deref()
        .and_then(|n| pkg.versions.iter().find(|v| v.version == n));
    if let Some(cert) = newest.and_then(|v| v.certificate.as_ref()) {
        writeln!(
            w,
            "certificate: {}{}",
            one_line(&cert.sha256),
            certificate_note(&cert.check)
        )?;
    }
    writeln!(w, "versions:")?;
    for v in &pkg.versions {
        let mut flags = String::new();
        if v.yanked {
            flags.push_str(" yanked");
        }
        if !v.conflicting_cids.is_empty() {
            flags.push_str(" CID-CONFLICT");
        }
        if v.certificate.as_ref().is_some_and(|c| c.check == "changed") {
            flags.push_str(" CERTIFICATE-CHANGED");
        }
        writeln!(
            w,
            "  {:<12} code {:<6} {:>10}  {}{flags}",
            v.version,
            v.version_code,
            crate::output::bytes_short(v.size),
            v.cid
        )?;
    }
    Ok(())
}

/// What the server's rule 9 check of a release's APK certificate means
/// (`docs/records.md`, section 6), as a suffix of the `certificate:` line.
fn certificate_note(check: &str) -> String {
    match check {
        "first" => " (the package's first)".into(),
        "same" => " (as the releases before it)".into(),
        "rotated" => " (new: the APK's v3 proof of rotation leads to it)".into(),
        "allowed" => " (new: the author's identity names it)".into(),
        "changed" => {
            " (CHANGED: not the earlier releases' certificate; never offered as an update)".into()
        }
        "" => String::new(),
        other => format!(" ({})", one_line(other)),
    }
}

/// Text from records is data: control characters are shown escaped so a
/// record cannot drive the terminal, and so are bidirectional controls and
/// invisible characters (valid records hold none, but a search answer is
/// not a signed record).
pub(crate) fn one_line(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c.is_control() || ipsr_proto::is_hidden_char(c) {
            true => c.escape_default().collect::<Vec<_>>(),
            false => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn text_is_shown_escaped() {
        assert_eq!(one_line("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(one_line("Safe\u{202E}kpa.exe"), "Safe\\u{202e}kpa.exe");
        assert_eq!(one_line("x\u{200B}y"), "x\\u{200b}y");
        // Joiners are part of prose: kept.
        let persian = "\u{645}\u{6CC}\u{200C}\u{62E}";
        assert_eq!(one_line(persian), persian);
    }
}
