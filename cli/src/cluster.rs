//! Where to send requests: the cluster URL, token, TLS settings and service name, found the
//! way the DC/OS CLI passes them to plugins.
//!
//! Order (as the SDK's CLI does, `dcos-commons cli/client/dcoscli.go`):
//!
//! 1. `--url http://host:port`: a scheduler's REST address directly, without DC/OS (paths
//!    are `<url>/v1/...`). No cluster token is sent there: it could be any server.
//! 2. `DCOS_URL` (the DC/OS CLI sets it when it runs a plugin), with `DCOS_ACS_TOKEN`,
//!    `DCOS_TLS_INSECURE` or `DCOS_TLS_CA_PATH`.
//! 3. `dcos.toml` under `DCOS_DIR` (default `~/.dcos`): the cluster named or identified by
//!    `DCOS_CLUSTER`, else the one with the `attached` marker; `core.dcos_url`,
//!    `core.dcos_acs_token`, `core.ssl_verify` (`true`, `false` or a CA bundle path). The
//!    single-cluster layout of old CLIs (`DCOS_DIR/dcos.toml`) is read too.
//!
//! The service name: `--name`, else `DCOS_FASTDATA_SERVICE_NAME` (how the DC/OS CLI passes
//! the `[fastdata]` config section), else `[fastdata] service_name` in `dcos.toml`, else
//! `fastdata`. Requests go to `<cluster>/service/<name>/v1/...` (Admin Router).
//!
//! Pure except [`read_clusters`], which lists the configuration directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// The default service name.
pub const DEFAULT_SERVICE: &str = "fastdata";

/// How to check the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Against the built-in roots.
    Verify,
    /// Not at all (`DCOS_TLS_INSECURE`, `ssl_verify = "false"`).
    Insecure,
    /// Against this CA bundle.
    CaFile(PathBuf),
}

/// Where requests go and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Prefix of every API path: `<cluster>/service/<name>` or the `--url` as given, without
    /// a trailing slash.
    pub base: String,
    /// The DC/OS token, sent as `Authorization: token=<token>`.
    pub token: Option<String>,
    /// Certificate checking.
    pub tls: Tls,
    /// The service name, through a cluster; `None` with `--url`.
    pub service: Option<String>,
    /// Where the settings came from, for messages ("DCOS_URL", "--url", a dcos.toml path).
    pub origin: String,
}

impl Target {
    /// The URL of an API path such as `/v1/status`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// What the command line says about the target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// `--url`.
    pub url: Option<String>,
    /// `--name`.
    pub name: Option<String>,
}

/// One cluster's directory under `clusters/`, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDir {
    /// The directory name (the cluster id).
    pub id: String,
    /// The `attached` marker exists.
    pub attached: bool,
    /// Path of its `dcos.toml`.
    pub path: PathBuf,
    /// Its content (`None` when unreadable or missing).
    pub toml: Option<String>,
}

/// The configuration directory as read from disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigDir {
    /// The directory (`DCOS_DIR` or `~/.dcos`).
    pub path: PathBuf,
    /// Every cluster under `clusters/`.
    pub clusters: Vec<ClusterDir>,
    /// The old single-cluster `dcos.toml` directly under the directory.
    pub legacy: Option<String>,
}

/// Reads `dir`: each `clusters/<id>/` with its `attached` marker and `dcos.toml`, and a
/// top-level `dcos.toml`. A missing directory is an empty one.
pub fn read_clusters(dir: &Path) -> ConfigDir {
    let mut clusters = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("clusters")) {
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let toml_path = path.join("dcos.toml");
            clusters.push(ClusterDir {
                id: entry.file_name().to_string_lossy().into_owned(),
                attached: path.join("attached").exists(),
                toml: std::fs::read_to_string(&toml_path).ok(),
                path: toml_path,
            });
        }
    }
    clusters.sort_by(|a, b| a.id.cmp(&b.id));
    ConfigDir {
        path: dir.to_path_buf(),
        clusters,
        legacy: std::fs::read_to_string(dir.join("dcos.toml")).ok(),
    }
}

/// The configuration directory: `DCOS_DIR`, else `$HOME/.dcos`.
pub fn config_dir(env: &BTreeMap<String, String>) -> Option<PathBuf> {
    if let Some(dir) = env.get("DCOS_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    env.get("HOME")
        .or_else(|| env.get("USERPROFILE"))
        .filter(|h| !h.is_empty())
        .map(|home| Path::new(home).join(".dcos"))
}

/// The target from the flags, the environment and the configuration directory.
pub fn discover(
    flags: &Flags,
    env: &BTreeMap<String, String>,
    config: Option<&ConfigDir>,
) -> Result<Target, CliError> {
    let var = |key: &str| env.get(key).map(String::as_str).filter(|v| !v.is_empty());
    let env_tls = || {
        if var("DCOS_TLS_INSECURE").is_some_and(truthy) {
            Tls::Insecure
        } else if let Some(path) = var("DCOS_TLS_CA_PATH") {
            Tls::CaFile(PathBuf::from(path))
        } else {
            Tls::Verify
        }
    };

    if let Some(url) = &flags.url {
        let base = http_url(url, "--url")?;
        return Ok(Target {
            base,
            token: None,
            tls: env_tls(),
            service: None,
            origin: "--url".to_owned(),
        });
    }

    let (cluster, token, tls, toml_service, origin) =
        if let Some(url) = var("DCOS_URL").or_else(|| var("DCOS_DCOS_URL")) {
            let token = var("DCOS_ACS_TOKEN").or_else(|| var("DCOS_DCOS_ACS_TOKEN"));
            (
                http_url(url, "DCOS_URL")?,
                token.map(str::to_owned),
                env_tls(),
                None,
                "DCOS_URL".to_owned(),
            )
        } else {
            let Some(config) = config else {
                return Err(no_cluster(
                    "neither DCOS_URL nor a home directory to find ~/.dcos is set".to_owned(),
                ));
            };
            let (path, text) = pick_cluster(config, var("DCOS_CLUSTER"))?;
            let settings = parse_toml(&text, &path)?;
            let url = settings.url.ok_or_else(|| {
                no_cluster(format!(
                    "{} has no core.dcos_url; set it up again with `dcos cluster setup <url>`",
                    path.display()
                ))
            })?;
            let token = var("DCOS_ACS_TOKEN").map(str::to_owned).or(settings.token);
            let tls = if var("DCOS_TLS_INSECURE").is_some() || var("DCOS_TLS_CA_PATH").is_some() {
                env_tls()
            } else {
                settings.tls
            };
            (
                http_url(&url, &format!("core.dcos_url in {}", path.display()))?,
                token,
                tls,
                settings.service,
                path.display().to_string(),
            )
        };

    let name = flags
        .name
        .as_deref()
        .or_else(|| var("DCOS_FASTDATA_SERVICE_NAME"))
        .or(toml_service.as_deref())
        .unwrap_or(DEFAULT_SERVICE);
    let service = service_path(name)?;
    Ok(Target {
        base: format!("{cluster}/service/{service}"),
        token: token.filter(|t| !t.is_empty()),
        tls,
        service: Some(service),
        origin,
    })
}

fn no_cluster(why: impl std::fmt::Display) -> CliError {
    CliError::NoCluster(format!(
        "no DC/OS cluster is configured: {why}. Run `dcos cluster setup <url>` (or `dcos cluster attach <name>`), set DCOS_URL and DCOS_ACS_TOKEN, or talk to a scheduler directly with --url http://HOST:PORT"
    ))
}

fn truthy(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// `url` without trailing slashes, if it is an http(s) URL.
fn http_url(url: &str, source: &str) -> Result<String, CliError> {
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
            Ok(trimmed.to_owned())
        }
        _ => Err(CliError::Usage(format!(
            "{source} must be an http:// or https:// URL such as https://dcos.example.com, not {url:?}"
        ))),
    }
}

/// The service name as an Admin Router path: `/group/fastdata` → `group/fastdata`.
fn service_path(name: &str) -> Result<String, CliError> {
    let trimmed = name.trim().trim_matches('/');
    let valid = !trimmed.is_empty()
        && trimmed.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if valid {
        Ok(trimmed.to_owned())
    } else {
        Err(CliError::Usage(format!(
            "{name:?} is not a service name: use letters, digits, '-', '_' and '.', with '/' between folders (e.g. dev/fastdata)"
        )))
    }
}

/// The `dcos.toml` of the cluster to use, and its path.
fn pick_cluster(config: &ConfigDir, selector: Option<&str>) -> Result<(PathBuf, String), CliError> {
    let named = |c: &ClusterDir| {
        c.toml
            .as_deref()
            .and_then(|t| toml::from_str::<toml::Table>(t).ok())
            .and_then(|t| t.get("cluster")?.get("name")?.as_str().map(str::to_owned))
    };
    let known = || {
        let names: Vec<String> = config
            .clusters
            .iter()
            .map(|c| match named(c) {
                Some(name) => format!("{name} ({})", c.id),
                None => c.id.clone(),
            })
            .collect();
        if names.is_empty() {
            format!("no cluster is set up under {}", config.path.display())
        } else {
            format!("the clusters set up are {}", names.join(", "))
        }
    };
    let chosen = match selector {
        Some(wanted) => {
            let matches: Vec<&ClusterDir> = config
                .clusters
                .iter()
                .filter(|c| named(c).as_deref() == Some(wanted) || c.id.starts_with(wanted))
                .collect();
            match matches.as_slice() {
                [one] => *one,
                [] => {
                    return Err(no_cluster(format!(
                        "DCOS_CLUSTER={wanted} names no cluster; {}",
                        known()
                    )));
                }
                _ => {
                    return Err(no_cluster(format!(
                        "DCOS_CLUSTER={wanted} matches {} clusters; use a longer id",
                        matches.len()
                    )));
                }
            }
        }
        None => match config.clusters.iter().find(|c| c.attached) {
            Some(cluster) => cluster,
            None if config.clusters.is_empty() && config.legacy.is_some() => {
                let path = config.path.join("dcos.toml");
                return Ok((path, config.legacy.clone().unwrap_or_default()));
            }
            None if config.clusters.is_empty() => {
                return Err(no_cluster(format!("DCOS_URL is not set and {}", known())));
            }
            None => {
                return Err(no_cluster(format!(
                    "no cluster is attached ({}); attach one with `dcos cluster attach <name>` or choose one with DCOS_CLUSTER",
                    known()
                )));
            }
        },
    };
    match &chosen.toml {
        Some(text) => Ok((chosen.path.clone(), text.clone())),
        None => Err(no_cluster(format!(
            "{} is missing or unreadable",
            chosen.path.display()
        ))),
    }
}

/// What `dcos.toml` says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    url: Option<String>,
    token: Option<String>,
    tls: Tls,
    service: Option<String>,
}

fn parse_toml(text: &str, path: &Path) -> Result<Settings, CliError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        CliError::NoCluster(format!(
            "{} is not valid TOML ({}); fix it or set it up again with `dcos cluster setup <url>`",
            path.display(),
            e.message()
        ))
    })?;
    let get = |section: &str, key: &str| table.get(section).and_then(|s| s.get(key));
    let string = |section: &str, key: &str| {
        get(section, key)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    // ssl_verify is "true", "false" or a CA bundle path; older configs wrote a boolean.
    let tls = match get("core", "ssl_verify") {
        Some(toml::Value::Boolean(false)) => Tls::Insecure,
        Some(toml::Value::String(s)) if s.eq_ignore_ascii_case("false") => Tls::Insecure,
        Some(toml::Value::String(s)) if !s.is_empty() && !s.eq_ignore_ascii_case("true") => {
            Tls::CaFile(PathBuf::from(s))
        }
        _ => Tls::Verify,
    };
    Ok(Settings {
        url: string("core", "dcos_url"),
        token: string("core", "dcos_acs_token"),
        tls,
        service: string("fastdata", "service_name"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn cluster(id: &str, attached: bool, toml: &str) -> ClusterDir {
        ClusterDir {
            id: id.to_owned(),
            attached,
            path: PathBuf::from(format!("/home/op/.dcos/clusters/{id}/dcos.toml")),
            toml: Some(toml.to_owned()),
        }
    }

    fn dir(clusters: Vec<ClusterDir>) -> ConfigDir {
        ConfigDir {
            path: PathBuf::from("/home/op/.dcos"),
            clusters,
            legacy: None,
        }
    }

    const PROD: &str = r#"
[core]
dcos_url = "https://prod.example.com/"
dcos_acs_token = "prod-token"
ssl_verify = "/home/op/.dcos/clusters/a1/dcos_ca.crt"
[cluster]
name = "prod"
[fastdata]
service_name = "data/fastdata"
"#;
    const DEV: &str = r#"
[core]
dcos_url = "http://dev.example.com"
ssl_verify = "false"
[cluster]
name = "dev"
"#;

    #[test]
    fn the_environment_the_dcos_cli_sets_wins() {
        let target = discover(
            &Flags::default(),
            &env(&[
                ("DCOS_URL", "https://c.example.com"),
                ("DCOS_ACS_TOKEN", "t0k"),
                ("DCOS_TLS_CA_PATH", "/ca.pem"),
                ("DCOS_FASTDATA_SERVICE_NAME", "fd2"),
            ]),
            Some(&dir(vec![cluster("a1", true, PROD)])),
        )
        .expect("found");
        assert_eq!(
            target,
            Target {
                base: "https://c.example.com/service/fd2".into(),
                token: Some("t0k".into()),
                tls: Tls::CaFile("/ca.pem".into()),
                service: Some("fd2".into()),
                origin: "DCOS_URL".into(),
            }
        );
        let insecure = discover(
            &Flags {
                name: Some("/group/fastdata/".into()),
                url: None,
            },
            &env(&[
                ("DCOS_URL", "https://c.example.com/"),
                ("DCOS_TLS_INSECURE", "1"),
            ]),
            None,
        )
        .expect("found");
        assert_eq!(
            insecure.base,
            "https://c.example.com/service/group/fastdata"
        );
        assert_eq!(insecure.tls, Tls::Insecure);
        assert_eq!(insecure.token, None, "no token, no header");
    }

    #[test]
    fn the_attached_cluster_is_read_from_dcos_toml() {
        let config = dir(vec![cluster("a1", true, PROD), cluster("b2", false, DEV)]);
        let target = discover(&Flags::default(), &env(&[]), Some(&config)).expect("found");
        assert_eq!(
            target.base,
            "https://prod.example.com/service/data/fastdata"
        );
        assert_eq!(target.token.as_deref(), Some("prod-token"));
        assert_eq!(
            target.tls,
            Tls::CaFile("/home/op/.dcos/clusters/a1/dcos_ca.crt".into())
        );
        assert_eq!(target.origin, "/home/op/.dcos/clusters/a1/dcos.toml");
        // DCOS_CLUSTER chooses another, by name or by id prefix; --name beats the config.
        for selector in ["dev", "b2"] {
            let target = discover(
                &Flags {
                    name: Some("other".into()),
                    url: None,
                },
                &env(&[("DCOS_CLUSTER", selector)]),
                Some(&config),
            )
            .expect("found");
            assert_eq!(target.base, "http://dev.example.com/service/other");
            assert_eq!(target.tls, Tls::Insecure);
            assert_eq!(target.token, None);
        }
    }

    #[test]
    fn a_legacy_single_cluster_config_works() {
        let config = ConfigDir {
            path: PathBuf::from("/home/op/.dcos"),
            clusters: Vec::new(),
            legacy: Some(DEV.to_owned()),
        };
        let target = discover(&Flags::default(), &env(&[]), Some(&config)).expect("found");
        assert_eq!(target.base, "http://dev.example.com/service/fastdata");
    }

    #[test]
    fn url_talks_to_a_scheduler_directly_without_the_cluster_token() {
        let target = discover(
            &Flags {
                url: Some("http://127.0.0.1:8080/".into()),
                name: Some("ignored".into()),
            },
            &env(&[
                ("DCOS_URL", "https://c.example.com"),
                ("DCOS_ACS_TOKEN", "secret"),
            ]),
            None,
        )
        .expect("found");
        assert_eq!(target.base, "http://127.0.0.1:8080");
        assert_eq!(target.url("/v1/status"), "http://127.0.0.1:8080/v1/status");
        assert_eq!(target.token, None);
        assert_eq!(target.service, None);
    }

    #[test]
    fn missing_or_ambiguous_configuration_says_what_to_do() {
        let cases: Vec<(BTreeMap<String, String>, Option<ConfigDir>, &str)> = vec![
            (env(&[]), None, "neither DCOS_URL nor a home directory"),
            (
                env(&[]),
                Some(dir(vec![])),
                "no cluster is set up under /home/op/.dcos",
            ),
            (
                env(&[]),
                Some(dir(vec![
                    cluster("a1", false, PROD),
                    cluster("b2", false, DEV),
                ])),
                "no cluster is attached (the clusters set up are prod (a1), dev (b2))",
            ),
            (
                env(&[("DCOS_CLUSTER", "staging")]),
                Some(dir(vec![cluster("a1", true, PROD)])),
                "DCOS_CLUSTER=staging names no cluster",
            ),
            (
                env(&[]),
                Some(dir(vec![cluster(
                    "a1",
                    true,
                    "[core]\nssl_verify = \"true\"\n",
                )])),
                "has no core.dcos_url",
            ),
            (
                env(&[]),
                Some(dir(vec![cluster("a1", true, "[core\n")])),
                "is not valid TOML",
            ),
        ];
        for (vars, config, message) in cases {
            let error = discover(&Flags::default(), &vars, config.as_ref()).expect_err(message);
            assert!(matches!(error, CliError::NoCluster(_)), "{error:?}");
            let text = error.to_string();
            assert!(text.contains(message), "{text:?} lacks {message:?}");
            assert!(text.contains("dcos cluster setup"), "{text}");
        }
    }

    #[test]
    fn bad_urls_and_names_are_usage_errors() {
        let bad_url = discover(
            &Flags::default(),
            &env(&[("DCOS_URL", "dcos.example.com")]),
            None,
        );
        assert!(
            matches!(bad_url, Err(CliError::Usage(m)) if m.contains("DCOS_URL must be an http"))
        );
        for name in ["", "a b", "../x", "a//b", "x?y"] {
            let result = discover(
                &Flags {
                    name: Some(name.into()),
                    url: None,
                },
                &env(&[("DCOS_URL", "https://c.example.com")]),
                None,
            );
            assert!(
                matches!(result, Err(CliError::Usage(_))),
                "{name:?}: {result:?}"
            );
        }
    }

    #[test]
    fn the_config_dir_is_dcos_dir_or_home() {
        assert_eq!(
            config_dir(&env(&[("DCOS_DIR", "/x"), ("HOME", "/h")])),
            Some(PathBuf::from("/x"))
        );
        assert_eq!(
            config_dir(&env(&[("HOME", "/h")])),
            Some(PathBuf::from("/h/.dcos"))
        );
        assert_eq!(config_dir(&env(&[])), None);
    }
}
