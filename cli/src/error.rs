//! [`CliError`]: every way a command can fail, each with a message a person can act on and
//! its own exit code, so scripts can tell "log in again" from "wrong service name".

use std::fmt;

/// Process exit codes.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// An unexpected failure (a server error, an answer that is not what the API promises).
    pub const FAILURE: u8 = 1;
    /// Bad command line (clap uses 2 as well).
    pub const USAGE: u8 = 2;
    /// No DC/OS cluster is configured or attached.
    pub const NO_CLUSTER: u8 = 3;
    /// The cluster refused the token (401) or the account lacks permission (403).
    pub const UNAUTHORIZED: u8 = 4;
    /// The service (or an endpoint of it) was not found (404).
    pub const NOT_FOUND: u8 = 5;
    /// The scheduler refused a change (400): the problems are listed field by field.
    pub const REFUSED: u8 = 6;
    /// The cluster or scheduler could not be reached (connection, TLS, timeout).
    pub const UNREACHABLE: u8 = 7;
    /// The scheduler is there but cannot answer now (502, 503, 504).
    pub const UNAVAILABLE: u8 = 8;
}

/// One problem with a refused change, as the scheduler reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The JSON field.
    pub field: String,
    /// The rule it breaks.
    pub message: String,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line is wrong in a way clap cannot see.
    #[error("{0}")]
    Usage(String),
    /// No cluster to talk to.
    #[error("{0}")]
    NoCluster(String),
    /// 401 or 403.
    #[error("{0}")]
    Unauthorized(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 400 with the problems.
    #[error("{}", refused_text(.summary, .problems))]
    Refused {
        /// The scheduler's message.
        summary: String,
        /// Every field and rule.
        problems: Vec<Problem>,
    },
    /// Connection, TLS or timeout.
    #[error("{0}")]
    Unreachable(String),
    /// 502, 503, 504.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else.
    #[error("{0}")]
    Failure(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => exit::USAGE,
            CliError::NoCluster(_) => exit::NO_CLUSTER,
            CliError::Unauthorized(_) => exit::UNAUTHORIZED,
            CliError::NotFound(_) => exit::NOT_FOUND,
            CliError::Refused { .. } => exit::REFUSED,
            CliError::Unreachable(_) => exit::UNREACHABLE,
            CliError::Unavailable(_) => exit::UNAVAILABLE,
            CliError::Failure(_) => exit::FAILURE,
        }
    }

    /// True for failures that may go away by themselves (`status --watch` keeps trying).
    pub fn is_transient(&self) -> bool {
        matches!(self, CliError::Unreachable(_) | CliError::Unavailable(_))
    }
}

/// The command-line flag that sets a scaling field.
pub fn flag_of(field: &str) -> Option<&'static str> {
    Some(match field {
        "mode" => "--mode",
        "scale_up_lag" => "--scale-up-lag",
        "scale_down_lag" => "--scale-down-lag",
        "min_consumers" => "--min",
        "max_consumers" => "--max",
        "step_interval_secs" => "--step-interval",
        "stabilization_window_secs" => "--stabilization-window",
        "cooldown_secs" => "--cooldown",
        "target_drain_time_secs" => "--target-drain-time",
        "headroom" => "--headroom",
        "max_observation_age_secs" => "--max-observation-age",
        _ => return None,
    })
}

fn refused_text(summary: &str, problems: &[Problem]) -> String {
    struct Lines<'a>(&'a [Problem]);
    impl fmt::Display for Lines<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for p in self.0 {
                match flag_of(&p.field) {
                    Some(flag) => writeln!(f, "  {flag} ({}): {}", p.field, p.message)?,
                    None => writeln!(f, "  {}: {}", p.field, p.message)?,
                }
            }
            Ok(())
        }
    }
    if problems.is_empty() {
        return format!("the scheduler refused the change: {summary}");
    }
    let count = problems.len();
    format!(
        "the scheduler refused the change ({count} problem{}):\n{}Nothing was changed.",
        if count == 1 { "" } else { "s" },
        Lines(problems)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_own_exit_code() {
        let errors = [
            CliError::Usage(String::new()),
            CliError::NoCluster(String::new()),
            CliError::Unauthorized(String::new()),
            CliError::NotFound(String::new()),
            CliError::Refused {
                summary: String::new(),
                problems: Vec::new(),
            },
            CliError::Unreachable(String::new()),
            CliError::Unavailable(String::new()),
            CliError::Failure(String::new()),
        ];
        let mut codes: Vec<u8> = errors.iter().map(CliError::exit_code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), errors.len());
        assert!(!codes.contains(&exit::OK));
    }

    #[test]
    fn refused_changes_list_each_field_with_its_flag() {
        let error = CliError::Refused {
            summary: "refused".into(),
            problems: vec![
                Problem {
                    field: "scale_down_lag".into(),
                    message: "scale_down_lag (900) must be below scale_up_lag (500)".into(),
                },
                Problem {
                    field: "body".into(),
                    message: "odd".into(),
                },
            ],
        };
        assert_eq!(
            error.to_string(),
            "the scheduler refused the change (2 problems):\n  --scale-down-lag (scale_down_lag): scale_down_lag (900) must be below scale_up_lag (500)\n  body: odd\nNothing was changed."
        );
    }
}
