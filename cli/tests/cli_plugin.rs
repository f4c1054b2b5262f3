//! The DC/OS CLI plugin packaging: `plugin.toml` (both flavours) names the command and the
//! binary as the DC/OS CLI expects and describes it as `--info` does; the bash completion
//! completes subcommands, flags and modes, as the DC/OS CLI calls it and for the binary run
//! directly, and offers exactly the flags `--help` lists (no drift).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn plugin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugin")
}

fn binary(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_dcos-fastdata"))
        .args(args)
        .env_clear()
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

#[test]
fn plugin_toml_names_the_command_its_binary_and_description() {
    let info = binary(&["fastdata", "--info"]);
    for (file, path) in [
        ("plugin.toml", "bin/dcos-fastdata"),
        ("windows/plugin.toml", "bin/dcos-fastdata.exe"),
    ] {
        let text = std::fs::read_to_string(plugin_dir().join(file)).expect("readable");
        let manifest: toml::Table = toml::from_str(&text).expect("valid TOML");
        assert_eq!(manifest["schema_version"].as_integer(), Some(1), "{file}");
        assert_eq!(manifest["name"].as_str(), Some("fastdata"), "{file}");
        let commands = manifest["commands"].as_array().expect("[[commands]]");
        assert_eq!(commands.len(), 1, "{file}");
        assert_eq!(commands[0]["name"].as_str(), Some("fastdata"), "{file}");
        assert_eq!(commands[0]["path"].as_str(), Some(path), "{file}");
        assert_eq!(
            commands[0]["description"].as_str(),
            Some(info.trim()),
            "{file}: the description is what --info says"
        );
    }
}

/// Runs the completion as the DC/OS CLI does: `words` is the command line up to and
/// including the word being completed, `c` the index after "fastdata".
fn complete(words: &[&str], c: usize) -> BTreeSet<String> {
    let script = plugin_dir().join("completion/bash/fastdata.sh");
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "set -u; source '{}'; words=({}); cword={}; c={c}; cur=${{words[cword]}}; _dcos_fastdata; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len() - 1
    );
    run_bash(&program)
}

fn run_bash(program: &str) -> BTreeSet<String> {
    let output = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", program])
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            assert!(l.ends_with(' '), "a completion ends with a space: {l:?}");
            l.trim_end().to_owned()
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn completion_offers_subcommands_flags_and_modes() {
    let cases: Vec<(&[&str], &[&str])> = vec![
        (
            &["dcos", "fastdata", ""],
            &["status", "scaling", "decisions", "producers"],
        ),
        (&["dcos", "fastdata", "producers", ""], &["set-rate"]),
        (&["dcos", "fastdata", "producers", "set-rate", ""], &[]),
        (&["dcos", "fastdata", "s"], &["status", "scaling"]),
        (&["dcos", "fastdata", "scaling", "s"], &["set"]),
        (
            &["dcos", "fastdata", "scaling", "set", "--scale-"],
            &["--scale-up-lag", "--scale-down-lag"],
        ),
        (
            &["dcos", "fastdata", "scaling", "set", "--mode", ""],
            &["step", "proportional"],
        ),
        (
            &["dcos", "fastdata", "--name", "fd2", "status", "--w"],
            &["--watch"],
        ),
        (&["dcos", "fastdata", "status", "--interval", ""], &[]),
        (&["dcos", "fastdata", "decisions", "--l"], &["--limit"]),
        (&["dcos", "fastdata", "--i"], &["--info"]),
    ];
    for (words, expected) in cases {
        assert_eq!(complete(words, 2), set(expected), "{words:?}");
    }
}

#[test]
fn completion_works_for_the_binary_run_directly() {
    let script = plugin_dir().join("completion/bash/fastdata.sh");
    for (words, expected) in [
        ("dcos-fastdata sc", vec!["scaling"]),
        ("dcos-fastdata fastdata scaling g", vec!["get"]),
    ] {
        let parts: Vec<&str> = words.split(' ').collect();
        let program = format!(
            "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; _dcos_fastdata_direct; printf '%s\\n' \"${{COMPREPLY[@]}}\"; complete -p dcos-fastdata >&2",
            script.display(),
            parts.join(" "),
            parts.len() - 1
        );
        assert_eq!(run_bash(&program), set(&expected), "{words}");
    }
}

/// The long flags `--help` lists for a command, visible aliases included.
fn help_flags(path: &[&str]) -> BTreeSet<String> {
    let mut args = path.to_vec();
    args.push("--help");
    let help = binary(&args);
    let mut flags = BTreeSet::new();
    let mut in_options = false;
    for line in help.lines() {
        if line.starts_with("Options:") {
            in_options = true;
            continue;
        }
        if in_options && !line.starts_with(' ') && !line.is_empty() {
            in_options = false;
        }
        if !in_options {
            continue;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with('-') {
            let spec = trimmed.split("  ").next().unwrap_or_default();
            for token in spec.split([' ', ',']) {
                if token.starts_with("--") {
                    flags.insert(token.to_owned());
                }
            }
        }
        // clap writes `[alias: --x]` for one and `[aliases: --x, --y]` for more.
        let aliases = line
            .split("[aliases: ")
            .nth(1)
            .or_else(|| line.split("[alias: ").nth(1));
        if let Some(aliases) = aliases {
            for token in aliases.trim_end_matches(']').split(", ") {
                flags.insert(token.trim_end_matches(']').to_owned());
            }
        }
    }
    flags
}

#[test]
fn completion_offers_exactly_the_flags_of_each_command() {
    for path in [
        &[][..],
        &["status"][..],
        &["scaling"][..],
        &["scaling", "get"][..],
        &["scaling", "set"][..],
        &["decisions"][..],
        &["producers"][..],
        &["producers", "set-rate"][..],
    ] {
        let mut expected = help_flags(path);
        if path.is_empty() {
            // Hidden from --help, but part of the plugin contract.
            expected.insert("--info".into());
            expected.insert("--config-schema".into());
        }
        let mut words = vec!["dcos", "fastdata"];
        words.extend_from_slice(path);
        words.push("--");
        assert_eq!(complete(&words, 2), expected, "{path:?}");
    }
}
