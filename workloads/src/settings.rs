//! Small configuration values shared by the workloads, with their parsers.
//!
//! Pure: parsing and validation of durations, Cassandra replication, CQL identifiers and
//! extra Kafka client properties. The error strings are written to be shown to an operator
//! as they are ("what is wrong, what to write instead").

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Parses `250ms`, `30s`, `1.5s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write e.g. 500ms, 30s or 2m"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}; use ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is not a usable duration"))
}

/// Keyspace replication. Written as `3` (SimpleStrategy, factor 3) or `dc1:3,dc2:2`
/// (NetworkTopologyStrategy with a factor per data center).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Replication {
    /// `SimpleStrategy` with this replication factor.
    Simple(u32),
    /// `NetworkTopologyStrategy` with these data centers and factors.
    NetworkTopology(Vec<(String, u32)>),
}

impl Replication {
    /// The CQL map for `CREATE KEYSPACE ... WITH replication = <this>`.
    pub fn to_cql(&self) -> String {
        match self {
            Replication::Simple(factor) => {
                format!("{{'class': 'SimpleStrategy', 'replication_factor': {factor}}}")
            }
            Replication::NetworkTopology(dcs) => {
                let mut cql = String::from("{'class': 'NetworkTopologyStrategy'");
                for (dc, factor) in dcs {
                    cql.push_str(&format!(", '{dc}': {factor}"));
                }
                cql.push('}');
                cql
            }
        }
    }
}

impl Default for Replication {
    fn default() -> Self {
        Replication::Simple(1)
    }
}

impl FromStr for Replication {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let hint = "write a replication factor such as 3, or data centers such as dc1:3,dc2:2";
        let text = text.trim();
        if let Ok(factor) = text.parse::<u32>() {
            return if factor == 0 {
                Err(format!("replication factor 0 keeps no copy; {hint}"))
            } else {
                Ok(Replication::Simple(factor))
            };
        }
        let mut dcs = Vec::new();
        for part in text.split(',') {
            let (dc, factor) = part
                .split_once(':')
                .ok_or_else(|| format!("{text:?} is not a replication setting; {hint}"))?;
            let dc = dc.trim();
            let valid_dc = !dc.is_empty()
                && dc
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
            if !valid_dc {
                return Err(format!("data center name {dc:?} is not valid; {hint}"));
            }
            let factor: u32 = factor
                .trim()
                .parse()
                .map_err(|_| format!("{factor:?} is not a replication factor; {hint}"))?;
            if dcs.iter().any(|(d, _)| d == dc) {
                return Err(format!("data center {dc:?} is named twice; {hint}"));
            }
            dcs.push((dc.to_owned(), factor));
        }
        Ok(Replication::NetworkTopology(dcs))
    }
}

impl fmt::Display for Replication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Replication::Simple(factor) => write!(f, "{factor}"),
            Replication::NetworkTopology(dcs) => {
                for (i, (dc, factor)) in dcs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{dc}:{factor}")?;
                }
                Ok(())
            }
        }
    }
}

/// Checks an unquoted CQL identifier (keyspace or table name): a letter, then up to 47
/// letters, digits or underscores. Names are spliced into DDL (which cannot bind them), so
/// this is what keeps that safe.
pub fn check_cql_identifier(what: &str, name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = name.len() <= 48
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {name:?} is not a valid name; use a letter followed by up to 47 letters, digits or underscores"
        ))
    }
}

/// Parses an extra Kafka client property written `key=value`.
pub fn parse_kafka_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!(
            "{text:?} is not a Kafka property; write key=value, e.g. security.protocol=SSL"
        )),
    }
}

/// Splits a comma-separated list of `host:port` addresses, dropping empty entries.
pub fn split_addresses(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [
            ("250ms", Duration::from_millis(250)),
            ("30s", Duration::from_secs(30)),
            ("1.5s", Duration::from_millis(1500)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("7", Duration::from_secs(7)),
            (" 10 s", Duration::from_secs(10)),
        ];
        for (text, want) in ok {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        for bad in ["", "s", "ten", "5 days", "-1s", "1e400"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn replication() {
        assert_eq!("3".parse(), Ok(Replication::Simple(3)));
        assert_eq!(
            "dc1:3, dc2:2".parse(),
            Ok(Replication::NetworkTopology(vec![
                ("dc1".to_owned(), 3),
                ("dc2".to_owned(), 2)
            ]))
        );
        for bad in ["0", "", "dc1", "dc1:x", "d'c:1", "dc1:1,dc1:2", ":3"] {
            assert!(bad.parse::<Replication>().is_err(), "{bad}");
        }
        assert_eq!(
            Replication::Simple(2).to_cql(),
            "{'class': 'SimpleStrategy', 'replication_factor': 2}"
        );
        let nts: Replication = "dc1:3,dc2:2".parse().unwrap();
        assert_eq!(
            nts.to_cql(),
            "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}"
        );
        assert_eq!(nts.to_string().parse(), Ok(nts));
    }

    #[test]
    fn identifiers() {
        for good in ["sensors", "t_1", "A"] {
            assert_eq!(check_cql_identifier("keyspace", good), Ok(()));
        }
        for bad in ["", "1abc", "a-b", "a;DROP", &"x".repeat(49)] {
            assert!(check_cql_identifier("keyspace", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kafka_properties_and_addresses() {
        assert_eq!(
            parse_kafka_property("linger.ms = 5"),
            Ok(("linger.ms".to_owned(), "5".to_owned()))
        );
        assert!(parse_kafka_property("linger.ms").is_err());
        assert!(parse_kafka_property("=5").is_err());
        assert_eq!(
            split_addresses(" a:1, ,b:2,"),
            vec!["a:1".to_owned(), "b:2".to_owned()]
        );
    }
}
