//! [`ScalingConfig`]: the operator's thresholds, their defaults and their validation.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the policy sizes the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalingMode {
    /// The original system's rule, exactly: every `step_interval`, backlog above
    /// `scale_up_lag` and fewer than `max_consumers` → +1; backlog below `scale_down_lag` and
    /// more than `min_consumers` → -1.
    Step,
    /// Size the group in one step from the measured per-consumer throughput, the produce rate
    /// and the target drain time, as DS2 does.
    #[default]
    Proportional,
}

impl fmt::Display for ScalingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScalingMode::Step => "step",
            ScalingMode::Proportional => "proportional",
        })
    }
}

/// Thresholds and timings of the scaling policy. Durations are (fractional) seconds in JSON,
/// in fields named `..._secs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScalingConfig {
    /// `step` or `proportional` (default).
    pub mode: ScalingMode,
    /// Backlog (messages) above which the group needs more consumers (default 500).
    pub scale_up_lag: u64,
    /// Backlog below which the group may shrink (default 100). Between the two nothing
    /// changes.
    pub scale_down_lag: u64,
    /// Fewest consumers (default 1). 0 only together with `max_consumers` 0 (paused).
    pub min_consumers: u32,
    /// Most consumers (default 10). The partition count caps it too. 0 (with
    /// `min_consumers` 0) pauses consumption: every consumer is stopped and its resources
    /// released, the lag is still measured, and nothing scales until the bounds are raised.
    pub max_consumers: u32,
    /// How often `step` mode may change the count (default 15 s, as the original).
    #[serde(rename = "step_interval_secs", with = "secs")]
    pub step_interval: Duration,
    /// Scale down only when every sample of this window (taken since the last change)
    /// agrees, to the highest count any of them asked for (default 60 s; 0 disables).
    #[serde(rename = "stabilization_window_secs", with = "secs")]
    pub stabilization_window: Duration,
    /// After a change, no further scale-up until the group has the new count of members and
    /// is stable, or at the latest after this long (default 120 s; 0: do not wait).
    #[serde(rename = "cooldown_secs", with = "secs")]
    pub cooldown: Duration,
    /// `proportional`: the backlog should be gone within this time (default 60 s).
    #[serde(rename = "target_drain_time_secs", with = "secs")]
    pub target_drain_time: Duration,
    /// `proportional`: spare capacity kept when scaling down, as a fraction (default 0.05:
    /// the remaining consumers must handle 105% of the produce rate).
    pub headroom: f64,
    /// Observations older than this are treated as stale (default 10 s).
    #[serde(rename = "max_observation_age_secs", with = "secs")]
    pub max_observation_age: Duration,
}

impl Default for ScalingConfig {
    fn default() -> Self {
        ScalingConfig {
            mode: ScalingMode::Proportional,
            scale_up_lag: 500,
            scale_down_lag: 100,
            min_consumers: 1,
            max_consumers: 10,
            step_interval: Duration::from_secs(15),
            stabilization_window: Duration::from_secs(60),
            cooldown: Duration::from_secs(120),
            target_drain_time: Duration::from_secs(60),
            headroom: 0.05,
            max_observation_age: Duration::from_secs(10),
        }
    }
}

/// One reason a [`ScalingConfig`] is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The hysteresis band is empty or inverted.
    #[error(
        "scale_down_lag ({down}) must be below scale_up_lag ({up}): the group grows above scale_up_lag, shrinks below scale_down_lag and holds in between"
    )]
    ScaleDownNotBelowScaleUp {
        /// scale_down_lag
        down: u64,
        /// scale_up_lag
        up: u64,
    },
    /// No consumer as a floor while consumers may run: scale to zero is not supported.
    #[error(
        "min_consumers must be at least 1 (or 0 together with max_consumers 0, which pauses consumption): with no consumer nothing is committed, and the policy could not measure how fast a consumer reads"
    )]
    MinZero,
    /// Bounds inverted.
    #[error(
        "min_consumers ({min}) must not exceed max_consumers ({max}){hint}",
        hint = pause_hint(.max)
    )]
    MinAboveMax {
        /// min_consumers
        min: u32,
        /// max_consumers
        max: u32,
    },
    /// A duration that must be positive is zero.
    #[error("{field} must be more than 0 seconds")]
    ZeroDuration {
        /// The JSON field name.
        field: &'static str,
    },
    /// A duration beyond one day, surely a unit mistake.
    #[error("{field} is {secs} s; more than a day is surely a mistake (durations are in seconds)")]
    DurationTooLong {
        /// The JSON field name.
        field: &'static str,
        /// The value in seconds.
        secs: u64,
    },
    /// Headroom outside [0, 1].
    #[error("headroom must be a fraction between 0 and 1 (0.05 keeps 5% spare capacity), not {0}")]
    Headroom(String),
}

impl ConfigError {
    /// The JSON field the rule is about. For a rule that relates two fields (the hysteresis
    /// band, the consumer bounds) it is the first one its message names.
    pub fn field(&self) -> &'static str {
        match self {
            ConfigError::ScaleDownNotBelowScaleUp { .. } => "scale_down_lag",
            ConfigError::MinZero | ConfigError::MinAboveMax { .. } => "min_consumers",
            ConfigError::ZeroDuration { field } | ConfigError::DurationTooLong { field, .. } => {
                field
            }
            ConfigError::Headroom(_) => "headroom",
        }
    }
}

/// Every reason a configuration was refused; displays them joined by "; ".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidConfig(pub Vec<ConfigError>);

impl fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let messages: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "invalid scaling configuration: {}", messages.join("; "))
    }
}

impl std::error::Error for InvalidConfig {}

/// What an operator who sets `max_consumers` to 0 most likely wants.
fn pause_hint(max: &u32) -> &'static str {
    if *max == 0 {
        "; to pause consumption set min_consumers to 0 as well"
    } else {
        ""
    }
}

impl ScalingConfig {
    /// Consumption is paused: `min_consumers` and `max_consumers` are both 0.
    pub fn paused(&self) -> bool {
        self.min_consumers == 0 && self.max_consumers == 0
    }

    /// Checks every rule; returns all violations at once.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let mut errors = Vec::new();
        if self.scale_down_lag >= self.scale_up_lag {
            errors.push(ConfigError::ScaleDownNotBelowScaleUp {
                down: self.scale_down_lag,
                up: self.scale_up_lag,
            });
        }
        if self.min_consumers == 0 && !self.paused() {
            errors.push(ConfigError::MinZero);
        }
        if self.min_consumers > self.max_consumers {
            errors.push(ConfigError::MinAboveMax {
                min: self.min_consumers,
                max: self.max_consumers,
            });
        }
        let positive = [
            ("step_interval_secs", self.step_interval),
            ("target_drain_time_secs", self.target_drain_time),
            ("max_observation_age_secs", self.max_observation_age),
        ];
        for (field, value) in positive {
            if value.is_zero() {
                errors.push(ConfigError::ZeroDuration { field });
            }
        }
        let day = Duration::from_secs(86_400);
        let bounded = [
            ("step_interval_secs", self.step_interval),
            ("stabilization_window_secs", self.stabilization_window),
            ("cooldown_secs", self.cooldown),
            ("target_drain_time_secs", self.target_drain_time),
            ("max_observation_age_secs", self.max_observation_age),
        ];
        for (field, value) in bounded {
            if value > day {
                errors.push(ConfigError::DurationTooLong {
                    field,
                    secs: value.as_secs(),
                });
            }
        }
        if !(0.0..=1.0).contains(&self.headroom) {
            errors.push(ConfigError::Headroom(self.headroom.to_string()));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(InvalidConfig(errors))
        }
    }
}

/// `Duration` as fractional seconds.
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(value.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs)
            .map_err(|_| D::Error::custom(format!("{secs} is not a duration in seconds")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones_and_valid() {
        let c = ScalingConfig::default();
        assert_eq!(
            (
                c.mode,
                c.scale_up_lag,
                c.scale_down_lag,
                c.min_consumers,
                c.max_consumers
            ),
            (ScalingMode::Proportional, 500, 100, 1, 10)
        );
        assert_eq!(c.step_interval, Duration::from_secs(15));
        assert_eq!(c.stabilization_window, Duration::from_secs(60));
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn each_bad_combination_has_its_message() {
        let d = ScalingConfig::default;
        let cases: Vec<(ScalingConfig, &str)> = vec![
            (
                ScalingConfig {
                    scale_down_lag: 500,
                    ..d()
                },
                "scale_down_lag (500) must be below scale_up_lag (500)",
            ),
            (
                ScalingConfig {
                    scale_down_lag: 900,
                    ..d()
                },
                "scale_down_lag (900) must be below scale_up_lag (500)",
            ),
            (
                ScalingConfig {
                    min_consumers: 4,
                    max_consumers: 3,
                    ..d()
                },
                "min_consumers (4) must not exceed max_consumers (3)",
            ),
            (
                ScalingConfig {
                    min_consumers: 0,
                    ..d()
                },
                "min_consumers must be at least 1",
            ),
            (
                ScalingConfig {
                    min_consumers: 1,
                    max_consumers: 0,
                    ..d()
                },
                "min_consumers (1) must not exceed max_consumers (0)",
            ),
            (
                ScalingConfig {
                    step_interval: Duration::ZERO,
                    ..d()
                },
                "step_interval_secs must be more than 0 seconds",
            ),
            (
                ScalingConfig {
                    target_drain_time: Duration::ZERO,
                    ..d()
                },
                "target_drain_time_secs must be more than 0 seconds",
            ),
            (
                ScalingConfig {
                    max_observation_age: Duration::ZERO,
                    ..d()
                },
                "max_observation_age_secs must be more than 0 seconds",
            ),
            (
                ScalingConfig {
                    cooldown: Duration::from_secs(90_000),
                    ..d()
                },
                "cooldown_secs is 90000 s",
            ),
            (
                ScalingConfig {
                    headroom: 1.5,
                    ..d()
                },
                "headroom must be a fraction between 0 and 1",
            ),
            (
                ScalingConfig {
                    headroom: f64::NAN,
                    ..d()
                },
                "not NaN",
            ),
        ];
        for (config, message) in cases {
            let error = config.validate().expect_err(message).to_string();
            assert!(
                error.contains(message),
                "{error:?} should contain {message:?}"
            );
        }
    }

    #[test]
    fn each_error_names_a_field_that_the_json_has() {
        let json = serde_json::to_value(ScalingConfig::default()).expect("serializes");
        let errors = [
            ConfigError::ScaleDownNotBelowScaleUp { down: 1, up: 1 },
            ConfigError::MinZero,
            ConfigError::MinAboveMax { min: 2, max: 1 },
            ConfigError::ZeroDuration {
                field: "step_interval_secs",
            },
            ConfigError::DurationTooLong {
                field: "cooldown_secs",
                secs: 90_000,
            },
            ConfigError::Headroom("2".into()),
        ];
        let fields: Vec<&str> = errors.iter().map(ConfigError::field).collect();
        assert_eq!(
            fields,
            vec![
                "scale_down_lag",
                "min_consumers",
                "min_consumers",
                "step_interval_secs",
                "cooldown_secs",
                "headroom"
            ]
        );
        for field in fields {
            assert!(json.get(field).is_some(), "{field} is not a JSON field");
        }
    }

    #[test]
    fn zero_stabilization_and_cooldown_are_allowed() {
        let c = ScalingConfig {
            stabilization_window: Duration::ZERO,
            cooldown: Duration::ZERO,
            ..ScalingConfig::default()
        };
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn all_errors_are_reported_together() {
        let c = ScalingConfig {
            scale_down_lag: 600,
            min_consumers: 5,
            max_consumers: 2,
            ..ScalingConfig::default()
        };
        assert_eq!(c.validate().map_err(|e| e.0.len()), Err(2));
    }

    #[test]
    fn json_round_trip_in_seconds() {
        let json = r#"{"mode":"step","scale_up_lag":1000,"step_interval_secs":7.5}"#;
        let c: ScalingConfig = serde_json::from_str(json).expect("parses");
        assert_eq!(c.mode, ScalingMode::Step);
        assert_eq!(c.scale_up_lag, 1000);
        assert_eq!(c.step_interval, Duration::from_millis(7500));
        assert_eq!(c.scale_down_lag, 100, "missing fields take defaults");
        let back: ScalingConfig =
            serde_json::from_str(&serde_json::to_string(&c).expect("serializes")).expect("parses");
        assert_eq!(back, c);
        let unknown = serde_json::from_str::<ScalingConfig>(r#"{"scale_up":1}"#);
        assert!(unknown.is_err(), "unknown fields are refused");
        let negative = serde_json::from_str::<ScalingConfig>(r#"{"cooldown_secs":-1}"#);
        assert!(negative.is_err());
    }
}
