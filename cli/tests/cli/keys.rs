//! Author keys: import and export, passphrases.

use snapbox::str;

use crate::common::{Env, fixture};

#[test]
fn keys_import_export_and_passphrases() {
    let env = Env::new();

    // An OpenSSH ed25519 key: its author id is its public key.
    let pubkey = std::fs::read_to_string(fixture("id_ed25519.pub")).unwrap();
    let author = env
        .stdout(&[
            "key",
            "import",
            fixture("id_ed25519").to_str().unwrap(),
            "--name",
            "ssh",
        ])
        .trim()
        .to_owned();
    let exported = env.stdout(&["key", "export", "ssh", "--public"]);
    assert_eq!(
        exported.split_whitespace().nth(1),
        pubkey.split_whitespace().nth(1),
        "the exported OpenSSH public key is the imported one"
    );
    env.cli(&["key", "export", "ssh", "--public", "--format", "author-id"])
        .assert()
        .success()
        .stdout_eq(format!("{author}\n"));
    let shown: serde_json::Value =
        serde_json::from_str(&env.stdout(&["key", "show", "ssh", "--json"])).unwrap();
    assert_eq!(shown["author"], author.as_str());
    assert_eq!(shown["protected"], false);

    // An encrypted OpenSSH key (made by ssh-keygen) needs its passphrase,
    // and its stored copy is sealed with it: never kept in the clear.
    let sealed = fixture("id_ed25519_sealed");
    env.cli(&["key", "import", sealed.to_str().unwrap(), "--name", "s"])
        .assert()
        .code(2)
        .stderr_eq(str![[r#"
error: the passphrase of [..]/id_ed25519_sealed is needed but there is no terminal to ask on; set IPSR_PASSPHRASE

"#]]);
    env.cli(&["key", "import", sealed.to_str().unwrap(), "--name", "s"])
        .env("IPSR_PASSPHRASE", "wrong")
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: [..]/id_ed25519_sealed: wrong passphrase

"#]]);
    env.cli(&["key", "import", sealed.to_str().unwrap(), "--name", "s"])
        .env("IPSR_PASSPHRASE", "fixture pass")
        .assert()
        .success()
        .stderr_eq(str![[r#"
[..]/id_ed25519_sealed is encrypted: the stored copy is sealed with the same passphrase
key "s" saved to [..]/ipsr/keys/s.toml

"#]]);
    let text = std::fs::read_to_string(env.config.path().join("ipsr/keys/s.toml")).unwrap();
    assert!(
        text.contains("[sealed]") && !text.contains("seed ="),
        "{text}"
    );
    let shown: serde_json::Value =
        serde_json::from_str(&env.stdout(&["key", "show", "s", "--json"])).unwrap();
    assert_eq!(shown["protected"], true);
    let sealed_pub = std::fs::read_to_string(fixture("id_ed25519_sealed.pub")).unwrap();
    let exported = env.stdout(&["key", "export", "s", "--public"]);
    assert_eq!(
        exported.split_whitespace().nth(1),
        sealed_pub.split_whitespace().nth(1),
        "the stored key is the one the file holds"
    );

    // An empty passphrase protects nothing: refused, and no key is stored.
    env.cli(&["key", "generate", "--name", "empty", "--passphrase"])
        .env("IPSR_PASSPHRASE", "")
        .assert()
        .code(2)
        .stderr_eq(str![[r#"
error: IPSR_PASSPHRASE is set but empty, and an empty passphrase protects nothing; set it to the passphrase, or unset it and leave out --passphrase to store the key without one

"#]]);
    assert!(!env.config.path().join("ipsr/keys/empty.toml").exists());
    env.cli(&[
        "key",
        "import",
        fixture("id_rsa").to_str().unwrap(),
        "--name",
        "rsa",
    ])
    .assert()
    .code(2)
    .stderr_eq(str![[r#"
error: [..]/id_rsa: a ssh-rsa key, but author keys are ed25519 (make one with ssh-keygen -t ed25519)

"#]]);

    // A passphrase-protected author key: publishing asks for it.
    env.cli(&["key", "generate", "--name", "locked", "--passphrase"])
        .env("IPSR_PASSPHRASE", "open sesame")
        .assert()
        .success();
    let text = std::fs::read_to_string(env.config.path().join("ipsr/keys/locked.toml")).unwrap();
    assert!(
        text.contains("[sealed]") && !text.contains("seed ="),
        "{text}"
    );
    env.write("app.bin", b"app bytes");
    // Each sealed key opens with its passphrase only: the generated one, and
    // the imported one with the OpenSSH key's.
    for (key, package, pass) in [
        ("locked", "com.example.locked", "open sesame"),
        ("s", "com.example.imported", "fixture pass"),
    ] {
        let publish = [
            "publish",
            "app.bin",
            "--package",
            package,
            "--version",
            "1.0.0",
            "--key",
            key,
        ];
        env.cli(&publish)
            .env("IPSR_PASSPHRASE", "wrong")
            .assert()
            .code(1)
            .stderr_eq(str![[r#"
error: wrong passphrase

"#]]);
        env.cli(&publish)
            .env("IPSR_PASSPHRASE", pass)
            .assert()
            .success();
    }
    env.cli(&["key", "list"])
        .assert()
        .success()
        .stdout_eq(str![[r#"
locked           k51qzi5uqu5d[..] (passphrase)
locked-recovery  k51qzi5uqu5d[..] (passphrase)
s                k51qzi5uqu5d[..] (passphrase)
ssh              k51qzi5uqu5d[..]

"#]]);
}

#[test]
fn key_export_without_public_says_what_it_exports() {
    let env = Env::new();
    env.stdout(&["key", "generate", "--no-recovery"]);
    env.cli(&["key", "export"])
        .assert()
        .code(2)
        .stderr_eq("error: key export prints only the public half of a key: add --public (ipsr-cli key export default --public); secret keys are not exported, copy the key file instead: [..]/ipsr/keys/default.toml\n");
}
