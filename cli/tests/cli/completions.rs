//! The completion scripts, run by the shells they are for: bash (its
//! completion function called as bash calls it), zsh (an interactive zsh in
//! a pseudo-terminal, TAB typed, the matches caught from `compadd`) and
//! fish (`complete -C`). A shell that is not installed is skipped, except
//! under CI (`CI` set), where `.ci/run` installs them.

use std::path::Path;
use std::process::Command;

use crate::common::Env;

/// Whether `shell` runs here; panics under CI when it does not.
fn have(shell: &str) -> bool {
    let found = Command::new(shell)
        .arg("-c")
        .arg("exit 0")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{shell} is not installed (apt-get install {shell})"
        );
        eprintln!("skipped the {shell} completions: no {shell} (apt-get install {shell})");
    }
    found
}

/// The script `ipsr-cli completions SHELL` prints, written to `dir/name`.
fn script(env: &Env, shell: &str, dir: &Path, name: &str) -> std::path::PathBuf {
    let text = env.stdout(&["completions", shell]);
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The completions bash offers for the words of `line` (the last one being
/// completed), as `complete -F` calls the function.
fn bash(script: &Path, line: &str) -> Vec<String> {
    let program = r#"
source "$1"
func=$(complete -p ipsr-cli | sed -E 's/.* -F ([^ ]+) .*/\1/')
read -r -a COMP_WORDS <<<"$2"
[[ $2 == *' ' ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE=$2
COMP_POINT=${#2}
prev=""
(( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD-1]}
"$func" ipsr-cli "${COMP_WORDS[COMP_CWORD]}" "$prev"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let out = run(Command::new("bash")
        .args(["--norc", "--noprofile", "-c", program, "bash"])
        .arg(script)
        .arg(line));
    out.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_subcommands_and_their_options() {
    if !have("bash") {
        return;
    }
    let env = Env::new();
    let script = script(&env, "bash", env.work.path(), "ipsr-cli.bash");
    assert_eq!(bash(&script, "ipsr-cli publish --pa"), ["--package"]);
    assert_eq!(bash(&script, "ipsr-cli pub"), ["publish"]);
    assert_eq!(bash(&script, "ipsr-cli key ex"), ["export"]);
    assert_eq!(bash(&script, "ipsr-cli key export --pu"), ["--public"]);
    // Global options before the subcommand do not lose it.
    assert_eq!(bash(&script, "ipsr-cli --json download --ou"), ["--output"]);
    assert_eq!(bash(&script, "ipsr-cli completions z"), ["zsh"]);
}

#[test]
fn zsh_completes_subcommands_and_their_options() {
    if !have("zsh") {
        return;
    }
    let env = Env::new();
    // zsh finds `_ipsr-cli` on its fpath (the script starts `#compdef ipsr-cli`).
    let dir = env.work.path().join("zfunc");
    std::fs::create_dir(&dir).unwrap();
    script(&env, "zsh", &dir, "_ipsr-cli");
    let zsh = |line: &str| -> Vec<String> {
        let out = env.work.path().join("matches");
        let _ = std::fs::remove_file(&out);
        let _ = std::fs::remove_file(out.with_extension("ready"));
        // An interactive zsh in a pseudo-terminal (zpty), with compinit and
        // compadd wrapped to write every match it is given to `out`; the
        // line is typed with a TAB.
        let program = r#"
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "fpath=($1 \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z "compadd() { local -a h; builtin compadd -O h \"\$@\"; print -rl -- \$h >> $2; builtin compadd \"\$@\"; }"
zpty -w z "print -r -- ready > $2.ready"
for i in {1..100}; do [[ -e $2.ready ]] && break; sleep 0.1; done
zpty -w -n z "$3"$'\t'
for i in {1..100}; do [[ -s $2 ]] && break; sleep 0.1; done
sleep 0.5
zpty -d z
"#;
        run(Command::new("zsh")
            .args(["-f", "-c", program, "zsh"])
            .arg(&dir)
            .arg(&out)
            .arg(line));
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let mut words: Vec<String> = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        words.sort();
        words.dedup();
        words
    };
    assert_eq!(zsh("ipsr-cli publish --pa"), ["--package"]);
    assert_eq!(zsh("ipsr-cli key ex"), ["export"]);
    assert_eq!(zsh("ipsr-cli completions fi"), ["fish"]);
}

#[test]
fn fish_completes_subcommands_and_their_options() {
    if !have("fish") {
        return;
    }
    let env = Env::new();
    let script = script(&env, "fish", env.work.path(), "ipsr-cli.fish");
    let fish = |line: &str| -> Vec<String> {
        let out = run(Command::new("fish")
            .args(["--no-config", "-c", "source $argv[1]; complete -C $argv[2]"])
            .arg(&script)
            .arg(line));
        // `complete -C` prints `CANDIDATE<TAB>DESCRIPTION`.
        out.lines()
            .map(|l| l.split('\t').next().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(fish("ipsr-cli publish --pa"), ["--package"]);
    assert_eq!(fish("ipsr-cli key ex"), ["export"]);
    assert_eq!(fish("ipsr-cli --json download --ou"), ["--output"]);
}
