//! `dcos fastdata`: the DC/OS CLI plugin for fastdata.
//!
//! Owns the `status [--watch] [--json]`, `scaling get|set`, `decisions` and
//! `producers [set-rate N]` subcommands, the
//! DC/OS plugin conventions (`--info`, `--version`, `--config-schema`, the subcommand name as
//! the first argument), finding the cluster URL and token the way the DC/OS CLI passes them
//! ([`cluster`]), and errors a person can act on with distinct exit codes ([`error::exit`]).
//! It talks HTTP and JSON to the scheduler's REST API only ([`client`]) and carries none of the
//! scheduler's dependencies: it reads the API's JSON with its own tolerant types ([`model`]).
//!
//! `--url http://127.0.0.1:PORT` talks to a scheduler directly, without DC/OS (for local
//! runs): then paths are `<url>/v1/...`.

pub mod client;
pub mod cluster;
pub mod error;
pub mod model;
pub mod render;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Map, Value};

use crate::cluster::{Flags, Target};
use crate::error::CliError;

/// The subcommand name the DC/OS CLI passes as the first argument.
pub const COMMAND: &str = "fastdata";

/// The one-line description (`--info`).
pub const INFO: &str =
    "Inspect fastdata's Kafka → Cassandra pipeline and change its scaling thresholds at runtime";

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  unexpected failure (server error, unreadable answer)
  2  bad command line
  3  no DC/OS cluster configured (dcos cluster setup, DCOS_URL, or --url)
  4  not authorized: token missing or expired (dcos auth login), or no permission
  5  service not found: installed under another name? (--name)
  6  change refused: the problems are listed field by field
  7  cannot reach the cluster or scheduler (network, TLS)
  8  service unavailable right now (starting, restarting, busy)";

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "dcos-fastdata",
    bin_name = "dcos fastdata",
    version,
    about = INFO,
    after_help = EXIT_CODES,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Print a one-line description of this plugin (DC/OS CLI convention).
    #[arg(long, hide = true)]
    pub info: bool,
    /// Print the JSON schema of this plugin's `[fastdata]` configuration section.
    #[arg(long, hide = true)]
    pub config_schema: bool,
    /// Name of the service (default: DCOS_FASTDATA_SERVICE_NAME, `[fastdata] service_name`
    /// in dcos.toml, else fastdata).
    #[arg(long, global = true, value_name = "NAME")]
    pub name: Option<String>,
    /// Talk to a scheduler's REST API directly, without DC/OS (e.g. http://127.0.0.1:8080).
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Lag, rates, consumers, sink health, why nothing changes, recent decisions.
    Status(StatusArgs),
    /// Show or change the scaling thresholds (no redeploy needed).
    Scaling {
        /// `get` or `set`.
        #[command(subcommand)]
        command: ScalingCommand,
    },
    /// The scaling decisions, newest first, with their reasons.
    Decisions(DecisionsArgs),
    /// Show the simulated producer tasks (local runs, load tests) or set their rate.
    Producers(ProducersArgs),
}

/// `producers [set-rate N]`.
#[derive(Debug, Args)]
pub struct ProducersArgs {
    /// Print the scheduler's JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// Without a subcommand: show the producer tasks and their rate.
    #[command(subcommand)]
    pub command: Option<ProducersCommand>,
}

/// `producers set-rate`.
#[derive(Debug, Subcommand)]
pub enum ProducersCommand {
    /// Set the rate of every producer task at once, in events per second each (0 pauses).
    /// Not persisted: a restarted scheduler starts them at their configured rate.
    SetRate {
        /// Events per second per producer task, 0 to 1000000.
        #[arg(value_name = "N", allow_negative_numbers = true)]
        rate: f64,
    },
}

/// `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the scheduler's JSON instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Redraw every interval until interrupted (with --json: one JSON document per line).
    #[arg(long)]
    pub watch: bool,
    /// Seconds between redraws with --watch (e.g. 2, 0.5, 5s, 1m).
    #[arg(long, default_value = "2", value_parser = parse_interval, value_name = "SECONDS")]
    pub interval: Duration,
}

/// `scaling get|set`.
#[derive(Debug, Subcommand)]
pub enum ScalingCommand {
    /// The thresholds in force.
    Get {
        /// Print the scheduler's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change some thresholds; the others keep their value. Validated and persisted by the
    /// scheduler, in force from its next decision.
    Set(SetArgs),
}

/// The scaling modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// The original rule: +1 above the scale-up lag, -1 below the scale-down lag, every
    /// step interval.
    Step,
    /// Size the group in one step from the measured per-consumer throughput.
    Proportional,
}

/// `scaling set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// Scaling mode.
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Grow the group when the backlog is above N messages.
    #[arg(long, value_name = "N")]
    pub scale_up_lag: Option<u64>,
    /// Let the group shrink when the backlog is below N messages.
    #[arg(long, value_name = "N")]
    pub scale_down_lag: Option<u64>,
    /// Fewest consumers (`--min 0 --max 0` pauses consumption: every consumer stops).
    #[arg(long = "min", visible_alias = "min-consumers", value_name = "N")]
    pub min: Option<u32>,
    /// Most consumers (the partition count caps it too).
    #[arg(long = "max", visible_alias = "max-consumers", value_name = "N")]
    pub max: Option<u32>,
    /// `step` mode acts at most once per this long (seconds, or 15s, 1m).
    #[arg(long, value_parser = parse_seconds, value_name = "SECONDS", allow_negative_numbers = true)]
    pub step_interval: Option<f64>,
    /// Scale down only when the whole window agrees (0 disables).
    #[arg(long, value_parser = parse_seconds, value_name = "SECONDS", allow_negative_numbers = true)]
    pub stabilization_window: Option<f64>,
    /// After a change, wait this long (at most) before growing again.
    #[arg(long, value_parser = parse_seconds, value_name = "SECONDS", allow_negative_numbers = true)]
    pub cooldown: Option<f64>,
    /// `proportional`: drain the backlog within this time.
    #[arg(long, value_parser = parse_seconds, value_name = "SECONDS", allow_negative_numbers = true)]
    pub target_drain_time: Option<f64>,
    /// `proportional`: spare capacity kept when scaling down, a fraction (0.05 = 5%).
    #[arg(long, value_name = "FRACTION")]
    pub headroom: Option<f64>,
    /// Lag readings older than this are stale.
    #[arg(long, value_parser = parse_seconds, value_name = "SECONDS", allow_negative_numbers = true)]
    pub max_observation_age: Option<f64>,
    /// Print the scheduler's JSON answer.
    #[arg(long)]
    pub json: bool,
}

/// `decisions`.
#[derive(Debug, Args)]
pub struct DecisionsArgs {
    /// Print the scheduler's JSON.
    #[arg(long)]
    pub json: bool,
    /// Show at most N decisions.
    #[arg(long, default_value_t = 20, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: u64,
}

/// The arguments as clap should see them: the DC/OS CLI runs `dcos-fastdata fastdata <args>`;
/// run by hand, `dcos-fastdata <args>` works too.
pub fn normalize(mut args: Vec<OsString>) -> Vec<OsString> {
    if args.get(1).is_some_and(|a| a == COMMAND) {
        args.remove(1);
    }
    args
}

/// Seconds: `15`, `7.5`, `15s`, `500ms`, `2m`, `1h`; not negative.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = text.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number.trim().parse().map_err(|_| {
        format!("{text:?} is not a duration: use seconds (15, 7.5) or 500ms, 15s, 2m, 1h")
    })?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("{text:?} must be a duration of 0 or more"));
    }
    Ok(value * scale)
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let secs = parse_seconds(text)?;
    if secs < 0.2 {
        return Err(format!(
            "{text:?} is too short: redraw at most 5 times a second (0.2)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The JSON schema of the `[fastdata]` section of the DC/OS CLI configuration
/// (`--config-schema`); the DC/OS CLI passes its keys as `DCOS_FASTDATA_<KEY>`.
pub fn config_schema() -> Value {
    serde_json::json!({
        "$schema": "http://json-schema.org/schema#",
        "title": "fastdata CLI configuration",
        "type": "object",
        "properties": {
            "service_name": {
                "type": "string",
                "title": "Service name",
                "description": "The name fastdata was installed under; --name overrides it.",
                "default": cluster::DEFAULT_SERVICE
            }
        },
        "additionalProperties": false
    })
}

/// The process environment as a map (non-UTF-8 values are left out).
pub fn environment() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Runs the parsed command line, writing to `out`. `--watch` runs until the process is
/// interrupted or a non-transient error happens.
pub async fn run(
    cli: Cli,
    env: &BTreeMap<String, String>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    if cli.info {
        return print(out, &format!("{INFO}\n"));
    }
    if cli.config_schema {
        return print(out, &format!("{:#}\n", config_schema()));
    }
    let Some(command) = cli.command else {
        return Err(CliError::Usage(
            "a subcommand is needed: status, scaling get, scaling set, decisions or producers (see --help)"
                .to_owned(),
        ));
    };
    let flags = Flags {
        url: cli.url,
        name: cli.name,
    };
    let config = if flags.url.is_none() && !env.contains_key("DCOS_URL") {
        cluster::config_dir(env).map(|dir| cluster::read_clusters(&dir))
    } else {
        None
    };
    let target = cluster::discover(&flags, env, config.as_ref())?;
    let http = client::http_client(&target)?;
    match command {
        Command::Status(args) if args.watch => watch(&http, &target, &args, out).await,
        Command::Status(args) => {
            let value: Value = get(&http, &target, "/v1/status").await?;
            if args.json {
                print(out, &format!("{value:#}\n"))
            } else {
                print(out, &render::status(&from_value(value)?))
            }
        }
        Command::Scaling {
            command: ScalingCommand::Get { json },
        } => {
            let value: Value = get(&http, &target, "/v1/scaling").await?;
            if json {
                print(out, &format!("{value:#}\n"))
            } else {
                print(out, &render::scaling(&from_value(value)?, &[]))
            }
        }
        Command::Scaling {
            command: ScalingCommand::Set(args),
        } => {
            let change = change_of(&args)?;
            let fields: Vec<String> = change.keys().cloned().collect();
            let body = Value::Object(change).to_string();
            let call = client::call(&target, "PUT", "/v1/scaling", Some(body));
            let reply = client::send(&http, &target, &call).await?;
            let value: Value = client::interpret(&target, &call, &reply)?;
            if args.json {
                print(out, &format!("{value:#}\n"))
            } else {
                let changed: Vec<&str> = fields.iter().map(String::as_str).collect();
                print(
                    out,
                    &format!(
                        "Scaling thresholds changed (* marks what you set; in force from the scheduler's next decision):\n{}",
                        render::scaling(&from_value(value)?, &changed)
                    ),
                )
            }
        }
        Command::Decisions(args) => {
            let value: Value = get(&http, &target, "/v1/decisions").await?;
            if args.json {
                return print(out, &format!("{value:#}\n"));
            }
            let decisions: model::Decisions = from_value(value)?;
            let shown: Vec<model::Decision> = decisions
                .decisions
                .iter()
                .take(usize::try_from(args.limit).unwrap_or(usize::MAX))
                .cloned()
                .collect();
            let header = if shown.is_empty() {
                "No scaling decision yet.\n".to_owned()
            } else {
                format!(
                    "Scaling decisions, newest first (UTC; {} of {}):\n",
                    shown.len(),
                    decisions.decisions.len()
                )
            };
            print(out, &format!("{header}{}", render::decision_lines(&shown)))
        }
        Command::Producers(args) => {
            let value = match args.command {
                None => get(&http, &target, "/v1/producers").await?,
                Some(ProducersCommand::SetRate { rate }) => {
                    let body = serde_json::json!({ "rate": rate }).to_string();
                    let call = client::call(&target, "PUT", "/v1/producers", Some(body));
                    let reply = client::send(&http, &target, &call).await?;
                    client::interpret(&target, &call, &reply)?
                }
            };
            if args.json {
                return print(out, &format!("{value:#}\n"));
            }
            let producers: model::Producers = from_value(value)?;
            let text = match args.command {
                None => render::producers(&producers),
                Some(ProducersCommand::SetRate { .. }) => render::producer_rate_set(&producers),
            };
            print(out, &text)
        }
    }
}

/// The JSON body of `scaling set`: only the fields given.
pub fn change_of(args: &SetArgs) -> Result<Map<String, Value>, CliError> {
    let mut change = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            change.insert(key.to_owned(), value);
        }
    };
    put(
        "mode",
        args.mode.map(|m| {
            Value::from(match m {
                Mode::Step => "step",
                Mode::Proportional => "proportional",
            })
        }),
    );
    put("scale_up_lag", args.scale_up_lag.map(Value::from));
    put("scale_down_lag", args.scale_down_lag.map(Value::from));
    put("min_consumers", args.min.map(Value::from));
    put("max_consumers", args.max.map(Value::from));
    put("step_interval_secs", args.step_interval.map(Value::from));
    put(
        "stabilization_window_secs",
        args.stabilization_window.map(Value::from),
    );
    put("cooldown_secs", args.cooldown.map(Value::from));
    put(
        "target_drain_time_secs",
        args.target_drain_time.map(Value::from),
    );
    put("headroom", args.headroom.map(Value::from));
    put(
        "max_observation_age_secs",
        args.max_observation_age.map(Value::from),
    );
    if change.is_empty() {
        return Err(CliError::Usage(
            "nothing to change: give at least one of --mode, --scale-up-lag, --scale-down-lag, --min, --max, --step-interval, --stabilization-window, --cooldown, --target-drain-time, --headroom, --max-observation-age".to_owned(),
        ));
    }
    Ok(change)
}

async fn get(http: &reqwest::Client, target: &Target, path: &str) -> Result<Value, CliError> {
    let call = client::call(target, "GET", path, None);
    let reply = client::send(http, target, &call).await?;
    client::interpret(target, &call, &reply)
}

fn from_value<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, CliError> {
    serde_json::from_value(value).map_err(|e| {
        CliError::Failure(format!(
            "the scheduler's answer has an unexpected shape: {e}"
        ))
    })
}

fn print(out: &mut dyn Write, text: &str) -> Result<(), CliError> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| CliError::Failure(format!("cannot write the output: {e}")))
}

/// ANSI: cursor home, clear the screen.
pub const CLEAR: &str = "\x1b[H\x1b[2J";

/// `status --watch`: redraws in place every interval. A transient failure (network, 503) is
/// shown on screen and retried; any other failure ends the command.
async fn watch(
    http: &reqwest::Client,
    target: &Target,
    args: &StatusArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let mut ticker = tokio::time::interval(args.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let every = format!("{} s", args.interval.as_secs_f64());
    loop {
        ticker.tick().await;
        let result = get(http, target, "/v1/status").await;
        match (result, args.json) {
            (Ok(value), true) => print(out, &format!("{value}\n"))?,
            (Ok(value), false) => {
                let status: model::Status = from_value(value)?;
                print(
                    out,
                    &format!(
                        "{CLEAR}{}\nEvery {every} · {} · Ctrl-C to stop\n",
                        render::status(&status),
                        status.at
                    ),
                )?;
            }
            (Err(error), false) if error.is_transient() => print(
                out,
                &format!("{CLEAR}{error}\n\nRetrying every {every} · Ctrl-C to stop\n"),
            )?,
            (Err(error), _) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugin_name_is_dropped_as_the_dcos_cli_passes_it() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            normalize(args(&["dcos-fastdata", "fastdata", "status"])),
            args(&["dcos-fastdata", "status"])
        );
        assert_eq!(
            normalize(args(&["dcos-fastdata", "status"])),
            args(&["dcos-fastdata", "status"])
        );
    }

    #[test]
    fn durations_read_as_seconds() {
        assert_eq!(parse_seconds("15"), Ok(15.0));
        assert_eq!(parse_seconds("7.5s"), Ok(7.5));
        assert_eq!(parse_seconds("500ms"), Ok(0.5));
        assert_eq!(parse_seconds("2m"), Ok(120.0));
        assert_eq!(parse_seconds("1h"), Ok(3600.0));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
        assert!(parse_interval("0.1").is_err());
        assert_eq!(parse_interval("1"), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn scaling_set_sends_only_the_flags_given() {
        let cli = Cli::try_parse_from([
            "dcos-fastdata",
            "scaling",
            "set",
            "--scale-up-lag",
            "1000",
            "--min",
            "2",
            "--mode",
            "step",
            "--cooldown",
            "1m",
        ])
        .expect("parses");
        let Some(Command::Scaling {
            command: ScalingCommand::Set(args),
        }) = cli.command
        else {
            panic!("scaling set");
        };
        assert_eq!(
            Value::Object(change_of(&args).expect("a change")),
            serde_json::json!({"scale_up_lag": 1000, "min_consumers": 2, "mode": "step", "cooldown_secs": 60.0})
        );
        let empty = Cli::try_parse_from(["dcos-fastdata", "scaling", "set"]).expect("parses");
        let Some(Command::Scaling {
            command: ScalingCommand::Set(args),
        }) = empty.command
        else {
            panic!("scaling set");
        };
        assert!(
            matches!(change_of(&args), Err(CliError::Usage(m)) if m.contains("nothing to change"))
        );
    }

    #[test]
    fn producers_takes_an_optional_set_rate() {
        let parse = |args: &[&str]| {
            let mut all = vec!["dcos-fastdata"];
            all.extend_from_slice(args);
            Cli::try_parse_from(all)
        };
        let Some(Command::Producers(get)) = parse(&["producers"]).expect("parses").command else {
            panic!("producers");
        };
        assert!(get.command.is_none() && !get.json);
        let Some(Command::Producers(set)) = parse(&["producers", "set-rate", "2500.5", "--json"])
            .expect("parses")
            .command
        else {
            panic!("producers set-rate");
        };
        assert!(set.json);
        assert!(matches!(
            set.command,
            Some(ProducersCommand::SetRate { rate }) if rate == 2500.5
        ));
        // A negative rate reaches the scheduler, which says what the range is.
        assert!(parse(&["producers", "set-rate", "-5"]).is_ok());
        for bad in [
            &["producers", "set-rate"][..],
            &["producers", "set-rate", "fast"],
            &["producers", "set-rate", "1", "2"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_config_schema_has_a_default_for_the_service_name() {
        let schema = config_schema();
        assert_eq!(schema["properties"]["service_name"]["default"], "fastdata");
    }
}
