//! The daemon's config file: TOML at `/etc/netspy/netspy.toml` (when it exists) or
//! `--config FILE`, whose keys are the daemon's flags (`max-events = 2000000`, `allow-host =
//! ["a", "b"]`, `_` for `-` works too) and whose values the flags' own parsers check.
//! Precedence: defaults < file < environment < flags: a key takes effect only where neither
//! its flag nor its environment variable was given. Unknown keys and bad values are refused
//! with the file, line and key, before anything starts. `--print-config` shows the result,
//! each setting with where it came from, secrets hidden.

use std::{
    collections::HashSet,
    ffi::OsString,
    path::{Path, PathBuf},
};

use anyhow::{anyhow, bail};
use clap::{Arg, ArgAction, ArgMatches, Command, parser::ValueSource};

/// Where the daemon looks for its config file when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/netspy/netspy.toml";

/// Arguments of `netspy daemon` that are not settings: never in the file or the printout.
const NOT_SETTINGS: [&str; 4] = ["help", "config", "print_config", "verbose"];

/// What a config file says, as flags for the command line.
#[derive(Debug, Default)]
pub struct FileSettings {
    /// The file read, if any.
    pub path: Option<PathBuf>,
    /// Flags standing for the file's settings that no flag or environment variable overrides.
    pub flags: Vec<OsString>,
    /// Ids of the settings those flags set.
    pub from_file: HashSet<String>,
}

/// Reads the config file `daemon_matches` names (or the default one, when it exists).
pub fn read(daemon: &Command, daemon_matches: &ArgMatches) -> anyhow::Result<FileSettings> {
    let (path, named) = match daemon_matches.get_one::<PathBuf>("config") {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_PATH), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if !named && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(FileSettings::default());
        }
        Err(e) => bail!("reading the config file {}: {e}", path.display()),
    };
    settings_of(&path, &text, daemon, daemon_matches)
}

/// The settings in `text` (the contents of `path`) that take effect over `matches`.
fn settings_of(
    path: &Path,
    text: &str,
    daemon: &Command,
    matches: &ArgMatches,
) -> anyhow::Result<FileSettings> {
    let document = toml_edit::Document::parse(text)
        .map_err(|e| anyhow!("config file {}: {}", path.display(), e.to_string().trim()))?;
    let table = document.as_table();
    let mut settings = FileSettings {
        path: Some(path.to_owned()),
        ..FileSettings::default()
    };
    for (key, item) in table.iter() {
        let line = table
            .key(key)
            .and_then(toml_edit::Key::span)
            .map_or(0, |span| text[..span.start].matches('\n').count() + 1);
        let at = format!("{}:{line}: `{key}`", path.display());
        let arg = setting(daemon, key).ok_or_else(|| {
            anyhow!(
                "{at}: no such setting; the keys are the daemon's flags: {}",
                keys(daemon).join(", ")
            )
        })?;
        let values = values_of(item).ok_or_else(|| {
            anyhow!("{at}: expected a string, a number, true or false, or a list of them")
        })?;
        if values.len() != 1 && !takes_many(arg) {
            bail!("{at}: expected one value, not a list");
        }
        for value in &values {
            check(arg, value).map_err(|reason| anyhow!("{at}: {reason}"))?;
        }
        let id = arg.get_id().as_str();
        if matches
            .value_source(id)
            .is_some_and(|source| source != ValueSource::DefaultValue)
        {
            continue; // its flag or environment variable wins
        }
        let flag = format!("--{}", arg.get_long().unwrap_or(id));
        if is_switch(arg) {
            if values == ["true"] {
                settings.flags.push(flag.into());
            }
        } else {
            // One word per value (`--max-events=-1`), so a value cannot pass for a flag.
            for value in values {
                settings.flags.push(format!("{flag}={value}").into());
            }
        }
        settings.from_file.insert(id.to_owned());
    }
    Ok(settings)
}

/// Whether `value` is one `arg` takes, checked by the flag's own parser (alone: no other
/// flag or environment variable is read); clap's reason when not.
fn check(arg: &Arg, value: &str) -> Result<(), String> {
    if is_switch(arg) {
        return match value {
            "true" | "false" => Ok(()),
            _ => Err(format!("expected true or false, not '{value}'")),
        };
    }
    let long = arg.get_long().unwrap_or(arg.get_id().as_str()).to_owned();
    let alone = Command::new("netspy-daemon").no_binary_name(true).arg(
        Arg::new("setting")
            .long(long.clone())
            .value_name(
                arg.get_value_names()
                    .and_then(|names| names.first())
                    .map_or("VALUE".to_owned(), ToString::to_string),
            )
            .value_parser(arg.get_value_parser().clone())
            .action(ArgAction::Set),
    );
    alone
        .try_get_matches_from([OsString::from(format!("--{long}={value}"))])
        .map(drop)
        .map_err(|e| clap_reason(&e))
}

/// The daemon's settings: every argument but help and the config options themselves.
fn settings(daemon: &Command) -> impl Iterator<Item = &Arg> {
    daemon
        .get_arguments()
        .filter(|arg| !NOT_SETTINGS.contains(&arg.get_id().as_str()) && arg.get_long().is_some())
}

fn setting<'a>(daemon: &'a Command, key: &str) -> Option<&'a Arg> {
    let key = key.replace('_', "-");
    settings(daemon).find(|arg| arg.get_long() == Some(key.as_str()))
}

fn keys(daemon: &Command) -> Vec<&str> {
    settings(daemon).filter_map(Arg::get_long).collect()
}

fn is_switch(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue)
}

fn takes_many(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
}

/// A TOML value as the strings a flag would get; None for tables and dates.
fn values_of(item: &toml_edit::Item) -> Option<Vec<String>> {
    fn scalar(value: &toml_edit::Value) -> Option<String> {
        match value {
            toml_edit::Value::String(s) => Some(s.value().clone()),
            toml_edit::Value::Integer(i) => Some(i.value().to_string()),
            toml_edit::Value::Boolean(b) => Some(b.value().to_string()),
            _ => None,
        }
    }
    match item.as_value()? {
        toml_edit::Value::Array(list) => list.iter().map(scalar).collect(),
        value => scalar(value).map(|v| vec![v]),
    }
}

/// clap's reason for refusing a value (with the possible values, when it lists them) on one
/// line, without its advice to try --help.
fn clap_reason(error: &clap::Error) -> String {
    let text = error.to_string();
    let reason: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("For more information"))
        .collect();
    let reason = reason.join(" ");
    reason.strip_prefix("error: ").unwrap_or(&reason).to_owned()
}

/// The effective settings as a TOML file, each with where it came from; secrets hidden.
pub fn effective(daemon: &Command, matches: &ArgMatches, file: &FileSettings) -> String {
    let mut out = format!(
        "# netspy daemon: effective settings (precedence: default < file < environment < \
         flag)\n# config file: {}\n",
        file.path.as_ref().map_or_else(
            || format!("none ({DEFAULT_PATH} absent)"),
            |p| p.display().to_string()
        )
    );
    for arg in settings(daemon) {
        let id = arg.get_id().as_str();
        let key = arg.get_long().unwrap_or(id);
        let origin = if file.from_file.contains(id) {
            "file"
        } else {
            match matches.value_source(id) {
                Some(ValueSource::CommandLine) => "flag",
                Some(ValueSource::EnvVariable) => "environment",
                _ => "default",
            }
        };
        let values: Vec<String> = matches
            .get_raw(id)
            .map(|raw| raw.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let value = if values.is_empty() {
            if takes_many(arg) {
                "[]".to_owned()
            } else {
                out.push_str(&format!("# {key} is not set\n"));
                continue;
            }
        } else if arg.is_hide_env_values_set() {
            toml_string("<hidden>")
        } else if is_switch(arg) {
            values.join("")
        } else if takes_many(arg) {
            format!(
                "[{}]",
                values
                    .iter()
                    .map(|v| toml_string(v))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else if values[0].parse::<i64>().is_ok() {
            values[0].clone()
        } else {
            toml_string(&values[0])
        };
        out.push_str(&format!("{key} = {value}  # {origin}\n"));
    }
    out
}

fn toml_string(text: &str) -> String {
    toml_edit::Value::from(text).to_string().trim().to_owned()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn daemon() -> Command {
        let mut cli = crate::cli::Cli::command();
        cli.build();
        cli.find_subcommand("daemon").cloned().unwrap()
    }

    fn matches(flags: &[&str]) -> ArgMatches {
        daemon()
            .try_get_matches_from(std::iter::once("daemon").chain(flags.iter().copied()))
            .unwrap()
    }

    fn read_text(text: &str, flags: &[&str]) -> anyhow::Result<FileSettings> {
        settings_of(
            Path::new("/etc/netspy/netspy.toml"),
            text,
            &daemon(),
            &matches(flags),
        )
    }

    #[test]
    fn every_daemon_setting_has_an_environment_variable() {
        let daemon = daemon();
        let missing: Vec<&str> = settings(&daemon)
            .filter(|arg| arg.get_env().is_none())
            .filter_map(Arg::get_long)
            .collect();
        assert!(missing.is_empty(), "no environment variable: {missing:?}");
    }

    #[test]
    fn settings_become_flags_unless_a_flag_says_otherwise() {
        let text =
            "max-events = 2000\nretention = \"2h\"\nallow_host = [\"a.example\", \"b.example\"]\n";
        let settings = read_text(text, &["--max-events", "5"]).unwrap();
        assert_eq!(
            settings.flags,
            [
                "--retention=2h",
                "--allow-host=a.example",
                "--allow-host=b.example"
            ]
            .map(OsString::from)
        );
        assert!(!settings.from_file.contains("max_events"));
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_line_and_the_known_keys() {
        let error = read_text("# comment\nretention = \"1h\"\nmax-event = 3\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("/etc/netspy/netspy.toml:3: `max-event`: no such setting; the keys are the daemon's flags: listen, "),
            "{error}"
        );
    }

    #[test]
    fn a_bad_value_is_refused_with_its_line_key_and_reason() {
        let error = read_text("\n\nmax-events = 0\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("/etc/netspy/netspy.toml:3: `max-events`: invalid value '0'"),
            "{error}"
        );
        let error = read_text("listen = [\"a\", \"b\"]\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(":1: `listen`: expected one value"),
            "{error}"
        );
        let error = read_text("[max-events]\nx = 1\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(":1: `max-events`: expected a string"),
            "{error}"
        );
        let error = read_text("retention = \n", &[]).unwrap_err().to_string();
        assert!(
            error.contains("config file /etc/netspy/netspy.toml: TOML parse error at line 1"),
            "{error}"
        );
    }

    #[test]
    fn the_printout_says_where_each_setting_came_from_and_hides_the_token() {
        let text = "token = \"s3cret-token\"\nmax-list = 7\n";
        let settings = read_text(text, &["--retention", "2h"]).unwrap();
        let mut flags = vec!["--retention", "2h"];
        let file_flags: Vec<String> = settings
            .flags
            .iter()
            .map(|f| f.to_string_lossy().into_owned())
            .collect();
        flags.extend(file_flags.iter().map(String::as_str));
        let printout = effective(&daemon(), &matches(&flags), &settings);
        assert!(!printout.contains("s3cret"), "{printout}");
        for line in [
            "token = \"<hidden>\"  # file",
            "max-list = 7  # file",
            "retention = \"2h\"  # flag",
            "listen = \"127.0.0.1:8080\"  # default",
            "allow-host = []  # default",
            "# config file: /etc/netspy/netspy.toml",
        ] {
            assert!(
                printout.lines().any(|l| l == line),
                "no {line:?} in\n{printout}"
            );
        }
    }
}
