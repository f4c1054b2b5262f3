//! The DC/OS Universe package (`universe-package/`) checked the way DC/OS uses it, and the
//! release script (`dev/release`) that fills its `resource.json`.
//!
//! Rendering goes through `dev/universe`, which runs mustache.java and the JSON schema validator
//! Cosmos itself uses (fetched from Maven Central on first use): defaults from `config.json`
//! merged with the options, validated against `config.json`, rendered with the `resource`
//! object and JSON-escaped strings. The rendered app is then checked against the Marathon app
//! rules written below (Marathon's own schema is not served by any registry), and the
//! scheduler's own parser judges the environment: `fastdata-scheduler --check-config` started
//! the way Marathon would start it (the app's `cmd` in a sandbox holding the fetched binary
//! and the mounted secret, with the app's `env` and nothing else but the variables Marathon
//! adds). The Universe schema rules (`package-schema.json` v4.0, `v3-resource-schema.json`,
//! `config-schema.json`) are written below as the subset a package must satisfy; no registry
//! serves the real files. No Kafka, Cassandra or ZooKeeper is needed: nothing here connects.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

use serde_json::{Value, json};

/// The base URL the test resource.json and the test release point at.
const BASE_URL: &str = "https://downloads.example.com/fastdata/0.1.0";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_owned()
}

fn package_dir() -> PathBuf {
    repo().join("universe-package")
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "fastdata-universe-{name}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write_json(&self, name: &str, value: &Value) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, serde_json::to_string_pretty(value).unwrap()).expect("write json");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------- tools the tests drive

/// Runs `dev/universe ARGS`, the Cosmos-faithful renderer and validator.
fn universe(args: &[&str]) -> Output {
    Command::new(repo().join("dev/universe"))
        .args(args)
        .output()
        .expect("run dev/universe (needs bash, java 17+ and, on first use, mvn; dev/bootstrap installs them)")
}

/// Validates `document` against `schema` (both JSON values) with Cosmos' validator; the
/// problems (one per line) if it does not match.
fn validate(scratch: &Scratch, what: &str, schema: &Value, document: &Value) -> Result<(), String> {
    let schema_file = scratch.write_json(&format!("{what}.schema.json"), schema);
    let document_file = scratch.write_json(&format!("{what}.json"), document);
    let out = universe(&[
        "validate",
        schema_file.to_str().unwrap(),
        document_file.to_str().unwrap(),
    ]);
    match out.status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(text(&out.stderr)),
        _ => panic!(
            "dev/universe validate failed to run for {what}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        ),
    }
}

/// The package's resource.json as a release for `BASE_URL` fills it: the URLs point there.
/// (The hashes stay placeholders: the Marathon app uses only the asset URLs; the release test
/// checks real hashes.)
fn test_resource(scratch: &Scratch) -> PathBuf {
    let template = fs::read_to_string(package_dir().join("resource.json")).unwrap();
    let path = scratch.path().join("resource.json");
    fs::write(&path, template.replace("{{artifact-dir}}", BASE_URL)).unwrap();
    path
}

/// `dcos package install fastdata [--options FILE]`, up to the Marathon app Cosmos would post:
/// the app, or the validation problems Cosmos would answer with.
fn render(scratch: &Scratch, options: Option<&Value>) -> Result<Value, String> {
    let resource = test_resource(scratch);
    let mut args = vec![
        "render".to_owned(),
        "--resource".to_owned(),
        resource.to_str().unwrap().to_owned(),
    ];
    if let Some(options) = options {
        let file = scratch.write_json("options.json", options);
        args.extend(["--options".to_owned(), file.to_str().unwrap().to_owned()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = universe(&args);
    match out.status.code() {
        Some(0) => Ok(serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "dev/universe render printed no JSON ({e}):\n{}",
                text(&out.stdout)
            )
        })),
        Some(1) => Err(text(&out.stderr)),
        _ => panic!(
            "dev/universe render failed to run: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        ),
    }
}

/// Builds workspace binaries (debug) with the cargo running the tests and returns their
/// paths by name. One build per test process: the tests share it.
fn binaries() -> &'static BTreeMap<String, PathBuf> {
    static BUILT: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let out = Command::new(cargo)
            .current_dir(repo())
            .args([
                "build",
                "--message-format=json-render-diagnostics",
                "-p",
                "fastdata-scheduler",
                "--bin",
                "fastdata-scheduler",
                "-p",
                "fastdata-executor",
                "--bin",
                "fastdata-executor",
                "-p",
                "dcos-fastdata",
                "--bin",
                "dcos-fastdata",
            ])
            .output()
            .expect("run cargo build");
        assert!(
            out.status.success(),
            "cargo build of the scheduler, executor and CLI failed:\n{}",
            text(&out.stderr)
        );
        let mut found = BTreeMap::new();
        for line in text(&out.stdout).lines() {
            let Ok(message) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if message["reason"] == "compiler-artifact"
                && let Some(executable) = message["executable"].as_str()
            {
                let name = message["target"]["name"].as_str().unwrap().to_owned();
                found.insert(name, PathBuf::from(executable));
            }
        }
        for name in ["fastdata-scheduler", "fastdata-executor", "dcos-fastdata"] {
            assert!(found.contains_key(name), "cargo built no {name}: {found:?}");
        }
        found
    })
}

fn binary(name: &str) -> &'static Path {
    &binaries()[name]
}

// ---------------------------------------------------------------- Marathon, as it starts the app

/// The secret store of the test cluster: secret path -> content.
type SecretStore = BTreeMap<String, String>;

/// A DC/OS service account credential with a fresh RSA key, as `dcos security org
/// service-accounts keypair` + `dcos security secrets create-sa-secret` would store it.
fn service_account_credential(uid: &str) -> String {
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect(
            "run openssl to make the test service account's key (Debian: apt-get install openssl)",
        );
    assert!(
        out.status.success(),
        "openssl genpkey: {}",
        text(&out.stderr)
    );
    let key = text(&out.stdout);
    assert!(key.contains("BEGIN PRIVATE KEY"), "not a PKCS#8 key: {key}");
    json!({ "uid": uid, "private_key": key }).to_string()
}

/// What Marathon does before the app's command runs: the sandbox holds every `fetch` URI under
/// its last path segment (the scheduler links to the freshly built binary, the executor is
/// never run here), the secrets are written at their container paths, and the environment is
/// the app's `env` plus the variables Marathon and Mesos add. Returns the sandbox and the env.
fn marathon_sandbox(
    app: &Value,
    resource: &Value,
    secrets: &SecretStore,
    scratch: &Scratch,
) -> (PathBuf, BTreeMap<String, String>) {
    let sandbox = scratch.path().join("sandbox");
    fs::create_dir_all(&sandbox).unwrap();
    let scheduler_uri = resource["assets"]["uris"]["fastdata-scheduler"]
        .as_str()
        .unwrap();
    for fetch in app["fetch"].as_array().expect("fetch is a list") {
        let uri = fetch["uri"].as_str().unwrap();
        let name = uri.rsplit('/').next().unwrap();
        let target = sandbox.join(name);
        if uri == scheduler_uri {
            std::os::unix::fs::symlink(binary("fastdata-scheduler"), &target).unwrap();
        } else {
            fs::write(&target, b"not run by this test").unwrap();
        }
    }
    let app_secrets = app.get("secrets").cloned().unwrap_or(json!({}));
    for volume in app["container"]["volumes"].as_array().into_iter().flatten() {
        let Some(reference) = volume["secret"].as_str() else {
            continue;
        };
        let source = app_secrets[reference]["source"]
            .as_str()
            .unwrap_or_else(|| panic!("volume secret {reference} is not in .secrets"));
        let content = secrets
            .get(source)
            .unwrap_or_else(|| panic!("the cluster has no secret {source}"));
        let path = sandbox.join(volume["containerPath"].as_str().unwrap());
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    let mut env = BTreeMap::new();
    for (name, value) in app["env"].as_object().expect("env is an object") {
        let value = value.as_str().unwrap_or_else(|| {
            panic!("env {name} is {value}, not a string (the package mounts secrets as files)")
        });
        env.insert(name.clone(), value.to_owned());
    }
    // Marathon names each port after its portDefinition (PORT_API, PORT_GRPC) and by index.
    let ports: Vec<u16> = vec![31_001, 31_002];
    for (index, definition) in app["portDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let port = ports[index].to_string();
        env.insert(format!("PORT{index}"), port.clone());
        if let Some(name) = definition["name"].as_str() {
            env.insert(format!("PORT_{}", name.to_uppercase()), port);
        }
    }
    env.insert(
        "PORTS".into(),
        ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(","),
    );
    env.insert("HOST".into(), "10.0.3.7".into());
    env.insert("MESOS_SANDBOX".into(), sandbox.to_str().unwrap().into());
    env.insert("MESOS_TASK_ID".into(), "fastdata.5a1b2c3d-test".into());
    env.insert("MARATHON_APP_ID".into(), app["id"].as_str().unwrap().into());
    (sandbox, env)
}

/// Starts the app's `cmd` with `--check-config` appended, exactly in Marathon's environment.
fn check_config(sandbox: &Path, env: &BTreeMap<String, String>, app: &Value) -> Output {
    let cmd = app["cmd"].as_str().expect("cmd is a string");
    Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{cmd} --check-config"))
        .env_clear()
        .envs(env)
        .current_dir(sandbox)
        .output()
        .expect("run the scheduler")
}

// ---------------------------------------------------------------- the rules

/// Universe's `config-schema.json`: what `scripts/validate_packages.py` asks of config.json
/// beyond being a draft-04 schema.
fn universe_config_rules() -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "required": ["properties"],
        "properties": {
            "type": { "type": "string", "enum": ["object"] },
            "properties": { "type": "object" }
        }
    })
}

/// Universe's `package-schema.json`, packaging version 4.0 (required fields, the pattern of a
/// version and of a tag, no unknown fields).
fn universe_package_v4_rules() -> Value {
    let url = json!({ "type": "string", "pattern": "^https?://" });
    json!({
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "required": [
            "packagingVersion", "name", "version", "maintainer", "description", "tags",
            "upgradesFrom", "downgradesTo", "minDcosReleaseVersion"
        ],
        "additionalProperties": false,
        "properties": {
            "packagingVersion": { "type": "string", "enum": ["4.0"] },
            "name": { "type": "string", "pattern": "^[a-z][a-z0-9-]*[a-z0-9]$" },
            "version": { "type": "string", "pattern": "^[-a-zA-Z0-9.]+$" },
            "scm": { "type": "string" },
            "maintainer": { "type": "string", "minLength": 1 },
            "website": { "type": "string" },
            "description": { "type": "string", "minLength": 1 },
            "framework": { "type": "boolean" },
            "upgradesFrom": { "type": "array", "items": { "type": "string" } },
            "downgradesTo": { "type": "array", "items": { "type": "string" } },
            "preInstallNotes": { "type": "string" },
            "postInstallNotes": { "type": "string" },
            "postUninstallNotes": { "type": "string" },
            "tags": {
                "type": "array",
                "minItems": 1,
                "items": { "type": "string", "pattern": "^[^\\s]+$" }
            },
            "selected": { "type": "boolean" },
            "licenses": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "url"],
                    "additionalProperties": false,
                    "properties": { "name": { "type": "string" }, "url": url }
                }
            },
            "minDcosReleaseVersion": {
                "type": "string",
                "pattern": "^(?:0|[1-9][0-9]*)(?:\\.(?:0|[1-9][0-9]*))*$"
            }
        }
    })
}

/// Universe's `v3-resource-schema.json`: assets, images, and CLI binaries with url, kind and
/// sha256 content hashes.
fn universe_resource_v3_rules() -> Value {
    let cli_info = json!({
        "type": "object",
        "required": ["url", "kind", "contentHash"],
        "additionalProperties": false,
        "properties": {
            "url": { "type": "string" },
            "kind": { "type": "string", "enum": ["executable", "zip"] },
            "contentHash": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["algo", "value"],
                    "additionalProperties": false,
                    "properties": {
                        "algo": { "type": "string", "enum": ["sha256"] },
                        "value": { "type": "string" }
                    }
                }
            }
        }
    });
    let platform = json!({
        "type": "object",
        "required": ["x86-64"],
        "additionalProperties": false,
        "properties": { "x86-64": cli_info }
    });
    json!({
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "assets": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "uris": { "type": "object", "additionalProperties": { "type": "string" } },
                    "container": {
                        "type": "object",
                        "additionalProperties": false,
                        "properties": {
                            "docker": { "type": "object", "additionalProperties": { "type": "string" } }
                        }
                    }
                }
            },
            "images": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "icon-small": { "type": "string" },
                    "icon-medium": { "type": "string" },
                    "icon-large": { "type": "string" },
                    "screenshots": { "type": "array", "items": { "type": "string" } }
                }
            },
            "cli": {
                "type": "object",
                "required": ["binaries"],
                "additionalProperties": false,
                "properties": {
                    "binaries": {
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": false,
                        "properties": { "linux": platform, "darwin": platform, "windows": platform }
                    }
                }
            }
        }
    })
}

/// A Marathon app definition (`/v2/apps`), the fields and types Marathon's API accepts, with
/// the fields SDK packages use that its last published JSON schema lacked (`check`, `role`).
/// Unknown fields are refused, so a misspelt field cannot pass silently.
fn marathon_app_rules() -> Value {
    let string_map = json!({ "type": "object", "additionalProperties": { "type": "string" } });
    let seconds = json!({ "type": "integer", "minimum": 0 });
    // Split in parts: one json! of this size exceeds the macro recursion limit.
    let parts = [
        json!({
        "id": {
            "type": "string",
            "pattern": "^/?(([a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])\\.)*([a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])(/(([a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])\\.)*([a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9]))*$"
        },
        "cmd": { "type": "string", "minLength": 1 },
        "args": { "type": "array", "items": { "type": "string" } },
        "user": { "type": "string", "minLength": 1 },
        "instances": { "type": "integer", "minimum": 0 },
        "cpus": { "type": "number", "minimum": 0.001 },
        "mem": { "type": "number", "minimum": 32 },
        "disk": { "type": "number", "minimum": 0 },
        "gpus": { "type": "integer", "minimum": 0 },
        "constraints": {
            "type": "array",
            "items": { "type": "array", "minItems": 2, "maxItems": 3, "items": { "type": "string" } }
        },
        "labels": string_map,
        "env": {
            "type": "object",
            "additionalProperties": {
                "oneOf": [
                    { "type": "string" },
                    {
                        "type": "object",
                        "required": ["secret"],
                        "additionalProperties": false,
                        "properties": { "secret": { "type": "string" } }
                    }
                ]
            }
        },
        "secrets": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["source"],
                "additionalProperties": false,
                "properties": { "source": { "type": "string", "minLength": 1 } }
            }
        },
        "container": {
            "type": "object",
            "properties": {
                "type": { "enum": ["MESOS", "DOCKER"] },
                "volumes": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["containerPath"],
                        "properties": {
                            "containerPath": { "type": "string", "minLength": 1 },
                            "secret": { "type": "string", "minLength": 1 }
                        }
                    }
                }
            }
        }
        }),
        json!({
        "fetch": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["uri"],
                "additionalProperties": false,
                "properties": {
                    "uri": { "type": "string", "minLength": 1 },
                    "executable": { "type": "boolean" },
                    "extract": { "type": "boolean" },
                    "cache": { "type": "boolean" },
                    "destPath": { "type": "string" }
                }
            }
        },
        "portDefinitions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["port"],
                "additionalProperties": false,
                "properties": {
                    "port": { "type": "integer", "minimum": 0, "maximum": 65535 },
                    "protocol": { "enum": ["tcp", "udp", "udp,tcp"] },
                    "name": { "type": "string", "pattern": "^[a-z0-9-]+$" },
                    "labels": string_map
                }
            }
        },
        "requirePorts": { "type": "boolean" },
        "upgradeStrategy": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "minimumHealthCapacity": { "type": "number", "minimum": 0, "maximum": 1 },
                "maximumOverCapacity": { "type": "number", "minimum": 0, "maximum": 1 }
            }
        },
        "healthChecks": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "protocol": {
                        "enum": ["HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP"]
                    },
                    "path": { "type": "string", "pattern": "^/" },
                    "portIndex": { "type": "integer", "minimum": 0 },
                    "port": { "type": "integer", "minimum": 0 },
                    "command": { "type": "object" },
                    "gracePeriodSeconds": seconds,
                    "intervalSeconds": { "type": "integer", "minimum": 1 },
                    "timeoutSeconds": { "type": "integer", "minimum": 1 },
                    "delaySeconds": seconds,
                    "maxConsecutiveFailures": seconds,
                    "ignoreHttp1xx": { "type": "boolean" }
                }
            }
        },
        "check": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "http": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "portIndex": { "type": "integer", "minimum": 0 },
                        "path": { "type": "string", "pattern": "^/" },
                        "scheme": { "enum": ["HTTP"] }
                    }
                },
                "tcp": { "type": "object" },
                "exec": { "type": "object" },
                "intervalSeconds": { "type": "integer", "minimum": 1 },
                "timeoutSeconds": { "type": "integer", "minimum": 1 },
                "delaySeconds": seconds
            }
        }
        }),
        json!({
        "backoffSeconds": { "type": "number", "minimum": 0 },
        "backoffFactor": { "type": "number", "minimum": 1 },
        "maxLaunchDelaySeconds": { "type": "number", "minimum": 0 },
        "taskKillGracePeriodSeconds": { "type": "number", "minimum": 0 },
        "role": { "type": "string" },
        "acceptedResourceRoles": { "type": "array", "items": { "type": "string" } },
        "dependencies": { "type": "array", "items": { "type": "string" } },
        "networks": { "type": "array" },
        "unreachableStrategy": {},
        "killSelection": { "enum": ["YOUNGEST_FIRST", "OLDEST_FIRST"] },
        "readinessChecks": { "type": "array" },
        "residency": { "type": "object" },
        "executor": { "type": "string" },
        "storeUrls": { "type": "array", "items": { "type": "string" } },
        "uris": { "type": "array", "items": { "type": "string" } },
        "tty": { "type": "boolean" },
        "resourceLimits": { "type": "object" }
        }),
    ];
    let mut properties = serde_json::Map::new();
    for part in parts {
        properties.extend(part.as_object().unwrap().clone());
    }
    json!({
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "required": ["id", "cmd", "cpus", "mem", "instances"],
        "additionalProperties": false,
        "properties": properties
    })
}

/// The rules of Marathon's app validation a JSON schema cannot say, and the DC/OS conventions
/// Admin Router, Cosmos and the SDK uninstall rely on (reference dcos.md §2.3, §1.11).
fn check_marathon_app(app: &Value, resource: &Value, service_name: &str) {
    let labels = &app["labels"];
    for (label, expected) in [
        ("MARATHON_SINGLE_INSTANCE_APP", "true"),
        ("DCOS_SERVICE_NAME", service_name),
        ("DCOS_SERVICE_PORT_INDEX", "0"),
        ("DCOS_SERVICE_SCHEME", "http"),
        ("DCOS_PACKAGE_FRAMEWORK_NAME", service_name),
        ("DCOS_COMMONS_UNINSTALL", "true"),
        ("DCOS_COMMONS_API_VERSION", "v1"),
    ] {
        assert_eq!(labels[label], json!(expected), "label {label}");
    }
    assert_eq!(app["id"], json!(service_name));
    // SchedulingValidation: a single-instance app runs at most one instance and is upgraded by
    // stopping the old one first (two schedulers at once would fight over the framework).
    assert_eq!(app["instances"], json!(1));
    assert_eq!(
        app["upgradeStrategy"],
        json!({ "minimumHealthCapacity": 0, "maximumOverCapacity": 0 })
    );

    // The scheduler reads PORT_API and PORT_GRPC, which Marathon derives from the names.
    let ports = app["portDefinitions"].as_array().unwrap();
    let names: Vec<&str> = ports.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["api", "grpc"]);
    assert!(
        ports.iter().all(|p| p["port"] == json!(0)),
        "ports are assigned by Marathon"
    );

    // Health: Mesos probes /v1/health on the API port; Marathon never kills the scheduler for it.
    let checks = app["healthChecks"].as_array().unwrap();
    assert_eq!(checks.len(), 1);
    let health = &checks[0];
    assert_eq!(health["protocol"], json!("MESOS_HTTP"));
    assert_eq!(health["path"], json!("/v1/health"));
    assert_eq!(health["portIndex"], json!(0));
    assert_eq!(health["maxConsecutiveFailures"], json!(0));
    assert_eq!(app["check"]["http"]["path"], json!("/v1/health"));
    assert_eq!(app["check"]["http"]["portIndex"], json!(0));

    // Every secret reference names a declared secret.
    let secrets = app.get("secrets").cloned().unwrap_or(json!({}));
    for volume in app["container"]["volumes"].as_array().into_iter().flatten() {
        if let Some(name) = volume["secret"].as_str() {
            assert!(
                secrets.get(name).is_some(),
                "volume secret {name} undeclared"
            );
        }
    }
    for (name, value) in app["env"].as_object().unwrap() {
        assert!(
            name.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
            "env name {name}"
        );
        if let Some(secret) = value.get("secret").and_then(Value::as_str) {
            assert!(
                secrets.get(secret).is_some(),
                "env secret {secret} undeclared"
            );
        }
    }

    // Both binaries come from resource.json, as executables; the scheduler's file name is
    // what `cmd` runs; the executor's URI is what the scheduler hands the agents.
    let uris = &resource["assets"]["uris"];
    let fetched: Vec<&str> = app["fetch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["executable"], json!(true), "{f}");
            assert_eq!(f["extract"], json!(false), "{f}");
            f["uri"].as_str().unwrap()
        })
        .collect();
    let scheduler = uris["fastdata-scheduler"].as_str().unwrap();
    let executor = uris["fastdata-executor"].as_str().unwrap();
    assert_eq!(fetched, [scheduler, executor]);
    let file = scheduler.rsplit('/').next().unwrap();
    assert_eq!(app["cmd"], json!(format!("exec ./{file}")));
    assert_eq!(app["env"]["FASTDATA_EXECUTOR_URI"], json!(executor));

    let rendered = app.to_string();
    assert!(
        !rendered.contains("{{"),
        "an unrendered tag is left: {rendered}"
    );
}

/// Every option of config.json, as a dotted path (`scaling.scale_up_lag`), with its schema.
fn config_options(schema: &Value, prefix: &str, out: &mut BTreeMap<String, Value>) {
    for (name, property) in schema["properties"].as_object().unwrap() {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        if property["type"] == json!("object") {
            config_options(property, &path, out);
        } else {
            out.insert(path, property.clone());
        }
    }
}

fn lookup<'a>(value: &'a Value, dotted: &str) -> &'a Value {
    dotted.split('.').fold(value, |v, key| &v[key])
}

fn set(value: &mut Value, dotted: &str, new: Value) {
    let mut keys = dotted.split('.').peekable();
    let mut at = value;
    while let Some(key) = keys.next() {
        if keys.peek().is_none() {
            at[key] = new;
            return;
        }
        if at.get(key).is_none() {
            at[key] = json!({});
        }
        at = &mut at[key];
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn config_json_is_a_draft04_schema_with_a_described_default_for_every_option() {
    let scratch = Scratch::new("config");
    let config_path = package_dir().join("config.json");
    let config = read_json(&config_path);

    let out = universe(&["check-schema", config_path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "config.json is not a valid draft-04 schema:\n{}",
        text(&out.stderr)
    );
    assert_eq!(
        config["$schema"],
        json!("http://json-schema.org/draft-04/schema#")
    );
    validate(&scratch, "config-rules", &universe_config_rules(), &config)
        .unwrap_or_else(|e| panic!("config.json breaks Universe's config rules:\n{e}"));

    // Sections: described, closed (a misspelt option is refused, not ignored).
    for (name, section) in config["properties"].as_object().unwrap() {
        assert_eq!(section["type"], json!("object"), "section {name}");
        assert_eq!(
            section["additionalProperties"],
            json!(false),
            "section {name}"
        );
        assert!(
            section["description"].is_string(),
            "section {name} has no description"
        );
    }
    assert_eq!(config["additionalProperties"], json!(false));

    let mut options = BTreeMap::new();
    config_options(&config, "", &mut options);
    assert!(options.len() > 40, "only {} options", options.len());
    let defaults_out = universe(&["defaults"]);
    assert!(
        defaults_out.status.success(),
        "{}",
        text(&defaults_out.stderr)
    );
    let defaults: Value = serde_json::from_slice(&defaults_out.stdout).unwrap();
    for (path, schema) in &options {
        assert!(schema["type"].is_string(), "{path} has no type");
        let description = schema["description"].as_str().unwrap_or_default();
        assert!(
            description.len() >= 15,
            "{path} needs a description an operator can act on"
        );
        assert!(schema.get("default").is_some(), "{path} has no default");
        assert_eq!(
            lookup(&defaults, path),
            &schema["default"],
            "Cosmos' default of {path}"
        );
    }
    // Cosmos validates the defaults merged with the options: the defaults alone must pass.
    validate(&scratch, "defaults", &config, &defaults)
        .unwrap_or_else(|e| panic!("the defaults do not match config.json:\n{e}"));
}

#[test]
fn package_json_and_resource_json_follow_the_universe_rules() {
    let scratch = Scratch::new("package");
    let package = read_json(&package_dir().join("package.json"));
    validate(&scratch, "package", &universe_package_v4_rules(), &package)
        .unwrap_or_else(|e| panic!("package.json breaks Universe's v4.0 rules:\n{e}"));
    assert_eq!(package["name"], json!("fastdata"));
    assert_eq!(package["framework"], json!(true));

    // The package version is the crates' version: one number for a release.
    let cargo = fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let workspace_version = cargo
        .split("[workspace.package]")
        .nth(1)
        .and_then(|s| s.lines().find(|l| l.trim_start().starts_with("version")))
        .and_then(|l| l.split('"').nth(1))
        .expect("[workspace.package] version");
    assert_eq!(package["version"], json!(workspace_version));

    // validate_packages.py: a package with a CLI needs DC/OS 1.8 or later.
    let min: Vec<u32> = package["minDcosReleaseVersion"]
        .as_str()
        .unwrap()
        .split('.')
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(min >= vec![1, 8], "minDcosReleaseVersion {min:?}");

    // The committed resource.json is the release template: valid once the release fills it.
    let resource_text = fs::read_to_string(package_dir().join("resource.json")).unwrap();
    let template: Value = serde_json::from_str(&resource_text).unwrap();
    validate(
        &scratch,
        "resource",
        &universe_resource_v3_rules(),
        &template,
    )
    .unwrap_or_else(|e| panic!("resource.json breaks Universe's v3 resource rules:\n{e}"));
    let binaries = template["cli"]["binaries"].as_object().unwrap();
    let platforms: BTreeSet<&str> = binaries.keys().map(String::as_str).collect();
    assert_eq!(platforms, BTreeSet::from(["darwin", "linux", "windows"]));
    for (platform, entry) in binaries {
        let cli = &entry["x86-64"];
        assert_eq!(cli["kind"], json!("zip"), "{platform}");
        let zip = format!("dcos-fastdata-{platform}-x86-64.zip");
        assert_eq!(cli["url"], json!(format!("{{{{artifact-dir}}}}/{zip}")));
        assert_eq!(
            cli["contentHash"],
            json!([{ "algo": "sha256", "value": format!("{{{{sha256:{zip}}}}}") }])
        );
    }

    // Air-gapped installs break when an artifact is missing from resource.json: every asset
    // the template uses is listed, and every listed asset is used.
    let template_text = fs::read_to_string(package_dir().join("marathon.json.mustache")).unwrap();
    let used: BTreeSet<String> = template_text
        .split("{{resource.assets.uris.")
        .skip(1)
        .map(|rest| rest.split("}}").next().unwrap().to_owned())
        .collect();
    let listed: BTreeSet<String> = template["assets"]["uris"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(used, listed);
}

#[test]
fn a_default_install_renders_an_app_the_scheduler_accepts() {
    let scratch = Scratch::new("defaults");
    let app = render(&scratch, None).unwrap_or_else(|e| panic!("the defaults are refused:\n{e}"));
    let resource = read_json(&test_resource(&scratch));
    validate(&scratch, "app", &marathon_app_rules(), &app)
        .unwrap_or_else(|e| panic!("not a valid Marathon app:\n{e}\n{app:#}"));
    check_marathon_app(&app, &resource, "fastdata");
    // No secret in open or permissive mode: no container, no credential.
    assert!(app.get("secrets").is_none() && app.get("container").is_none());
    assert!(app["env"].get("DCOS_SERVICE_ACCOUNT_CREDENTIAL").is_none());
    // Unset optional options stay unset, so the scheduler's own defaults apply.
    for absent in [
        "FRAMEWORK_ROLE",
        "FRAMEWORK_PRINCIPAL",
        "FASTDATA_KAFKA_PROPERTIES",
        "FASTDATA_CASSANDRA_USERNAME",
        "FASTDATA_CASSANDRA_PASSWORD_ENV",
        "FASTDATA_CASSANDRA_LOCAL_DC",
        "FASTDATA_VOLUME_OPTIONS",
    ] {
        assert!(app["env"].get(absent).is_none(), "{absent} is set");
    }

    let (sandbox, env) = marathon_sandbox(&app, &resource, &SecretStore::new(), &scratch);
    let out = check_config(&sandbox, &env, &app);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "the scheduler refuses the default install's environment:\n{}{stdout}",
        text(&out.stderr)
    );
    for expected in [
        "service_name: \"fastdata\"",
        "role: \"fastdata-role\"",
        "principal: \"fastdata-principal\"",
        "auth: None",
        "api_addr: 0.0.0.0:31001",
        "grpc_addr: 0.0.0.0:31002",
        "zk_connect: \"master.mesos:2181\"",
        "kafka_brokers: \"broker.kafka.l4lb.thisdcos.directory:9092\"",
        "\"node.cassandra.l4lb.thisdcos.directory:9042\"",
        "mode: Proportional",
        "scale_up_lag: 500",
        "scale_down_lag: 100",
        "lag_tick: 1s",
        "producer_count: 0",
        "uninstall: false",
        &format!("uri: \"{BASE_URL}/fastdata-executor\""),
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} not in the checked configuration:\n{stdout}"
        );
    }
}

/// Every option of config.json passed as an environment variable of the scheduler: the
/// option, a value other than its default (as JSON), the variable, and the value the scheduler
/// must see. With `APP_OPTIONS` below, every option is here: a new option that is not passed
/// on fails the coverage check of the test. The strings hold quotes and backslashes, the
/// numbers fractions, to exercise Cosmos' escaping and number rendering.
#[rustfmt::skip]
const ENV_OPTIONS: &[(&str, &str, &str, &str)] = &[
    ("service.name", r#""/team/fastdata""#, "FRAMEWORK_NAME", "/team/fastdata"),
    ("service.user", r#""fastdata""#, "FRAMEWORK_USER", "fastdata"),
    ("service.role", r#""sensors-quota""#, "FRAMEWORK_ROLE", "sensors-quota"),
    // With a service account, the account is the principal (service.principal is checked in
    // a permissive render).
    ("service.service_account", r#""fastdata-sa""#, "FRAMEWORK_PRINCIPAL", "fastdata-sa"),
    ("service.mesos_masters", r#""https://m1.example:5050,https://m2.example:5050""#, "FASTDATA_MESOS_MASTERS", "https://m1.example:5050,https://m2.example:5050"),
    ("service.zookeeper", r#""zk-1.example:2181,zk-2.example:2181""#, "FASTDATA_ZK_CONNECT", "zk-1.example:2181,zk-2.example:2181"),
    ("service.failover_timeout_secs", "1209600", "FASTDATA_FAILOVER_TIMEOUT", "1209600s"),
    ("service.reconcile_interval_secs", "600", "FASTDATA_RECONCILE_INTERVAL", "600s"),
    ("service.log_level", r#""debug""#, "RUST_LOG", "debug"),
    ("kafka.brokers", r#""k1.example:9092,k2.example:9093""#, "FASTDATA_KAFKA_BROKERS", "k1.example:9092,k2.example:9093"),
    ("kafka.topic", r#""plant-7.temperature""#, "FASTDATA_TOPIC", "plant-7.temperature"),
    ("kafka.group", r#""plant 7 \"sink\"""#, "FASTDATA_GROUP", r#"plant 7 "sink""#),
    ("kafka.partitions", "48", "FASTDATA_PARTITIONS", "48"),
    ("kafka.properties", r#""client.id=fast\"data\\1,security.protocol=SSL""#, "FASTDATA_KAFKA_PROPERTIES", r#"client.id=fast"data\1,security.protocol=SSL"#),
    ("cassandra.contact_points", r#""c1.example:9042,c2.example:9042""#, "FASTDATA_CASSANDRA_CONTACT_POINTS", "c1.example:9042,c2.example:9042"),
    ("cassandra.keyspace", r#""plant7""#, "FASTDATA_KEYSPACE", "plant7"),
    ("cassandra.replication", r#""dc1:3,dc2:2""#, "FASTDATA_REPLICATION", "dc1:3,dc2:2"),
    ("cassandra.local_dc", r#""dc1""#, "FASTDATA_CASSANDRA_LOCAL_DC", "dc1"),
    ("cassandra.username", r#""sensor_writer""#, "FASTDATA_CASSANDRA_USERNAME", "sensor_writer"),
    ("cassandra.password_env", r#""CASSANDRA_PASSWORD""#, "FASTDATA_CASSANDRA_PASSWORD_ENV", "CASSANDRA_PASSWORD"),
    ("cassandra.password_secret", r#""team/fastdata/cassandra-password""#, "FASTDATA_CASSANDRA_PASSWORD_SECRET", "team/fastdata/cassandra-password"),
    ("scaling.mode", r#""step""#, "FASTDATA_SCALING_MODE", "step"),
    ("scaling.scale_up_lag", "20000", "FASTDATA_SCALE_UP_LAG", "20000"),
    ("scaling.scale_down_lag", "2000", "FASTDATA_SCALE_DOWN_LAG", "2000"),
    ("scaling.min_consumers", "2", "FASTDATA_MIN_CONSUMERS", "2"),
    ("scaling.max_consumers", "24", "FASTDATA_MAX_CONSUMERS", "24"),
    ("scaling.step_interval_secs", "30", "FASTDATA_STEP_INTERVAL", "30s"),
    ("scaling.stabilization_window_secs", "300", "FASTDATA_STABILIZATION_WINDOW", "300s"),
    ("scaling.cooldown_secs", "0", "FASTDATA_COOLDOWN", "0s"),
    ("scaling.target_drain_time_secs", "90", "FASTDATA_TARGET_DRAIN_TIME", "90s"),
    // Cosmos renders a fraction as a Java double: 0.5 -> "0.5", which the duration parser takes.
    ("scaling.lag_tick_secs", "0.5", "FASTDATA_LAG_TICK", "0.5s"),
    ("consumer.cpus", "1.5", "FASTDATA_CONSUMER_CPUS", "1.5"),
    ("consumer.mem", "1024", "FASTDATA_CONSUMER_MEM", "1024"),
    ("consumer.grace_period_secs", "45", "FASTDATA_CONSUMER_GRACE_PERIOD", "45s"),
    ("consumer.max_per_agent", "0", "FASTDATA_MAX_CONSUMERS_PER_AGENT", "0"),
    ("consumer.spread_zones", "false", "FASTDATA_SPREAD_ZONES", "false"),
    ("producer.count", "2", "FASTDATA_PRODUCER_COUNT", "2"),
    ("producer.rate", "2500.5", "FASTDATA_PRODUCER_RATE", "2500.5"),
    ("producer.sensors", "200", "FASTDATA_PRODUCER_SENSORS", "200"),
    ("producer.cpus", "0.75", "FASTDATA_PRODUCER_CPUS", "0.75"),
    ("producer.mem", "384", "FASTDATA_PRODUCER_MEM", "384"),
    ("volume.driver", r#""pxd-csi""#, "FASTDATA_VOLUME_DRIVER", "pxd-csi"),
    ("volume.size_gb", "5", "FASTDATA_VOLUME_SIZE_GB", "5"),
    ("volume.options", r#""repl=2,io_priority=high""#, "FASTDATA_VOLUME_OPTIONS", "repl=2,io_priority=high"),
    ("executor.cpus", "0.2", "FASTDATA_EXECUTOR_CPUS", "0.2"),
    ("executor.mem", "96", "FASTDATA_EXECUTOR_MEM", "96"),
    ("executor.stats_interval_secs", "2.5", "FASTDATA_STATS_INTERVAL", "2.5s"),
];

/// The options Marathon itself reads: the option, its value (JSON), and where it shows in the
/// app (a JSON pointer), with the same value.
#[rustfmt::skip]
const APP_OPTIONS: &[(&str, &str, &str)] = &[
    ("service.service_account_secret", r#""team/fastdata/sa-credential""#, "/secrets/serviceCredential/source"),
    ("service.cpus", "0.25", "/cpus"),
    ("service.mem", "768", "/mem"),
    ("service.placement_constraints", r#"[["hostname", "LIKE", "10\\.0\\.[0-9]+\\.\"7\""], ["zone", "GROUP_BY"]]"#, "/constraints"),
];

#[test]
fn every_option_reaches_the_scheduler_in_a_strict_mode_folder_install() {
    let scratch = Scratch::new("options");
    let config = read_json(&package_dir().join("config.json"));
    let mut all = BTreeMap::new();
    config_options(&config, "", &mut all);
    let covered: BTreeSet<&str> = ENV_OPTIONS
        .iter()
        .map(|(path, ..)| *path)
        .chain(APP_OPTIONS.iter().map(|(path, ..)| *path))
        .chain(["service.principal"])
        .collect();
    let options_in_schema: BTreeSet<&str> = all.keys().map(String::as_str).collect();
    assert_eq!(
        covered, options_in_schema,
        "every config.json option needs a case here (and no case may name a missing option)"
    );

    let mut options = json!({});
    let values = ENV_OPTIONS
        .iter()
        .map(|(path, value, ..)| (*path, *value))
        .chain(APP_OPTIONS.iter().map(|(path, value, _)| (*path, *value)));
    for (path, value) in values {
        let value: Value = serde_json::from_str(value).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_ne!(
            all[path]["default"], value,
            "{path}: pick a value other than the default"
        );
        set(&mut options, path, value);
    }
    let app = render(&scratch, Some(&options)).unwrap_or_else(|e| panic!("refused:\n{e}"));
    let resource = read_json(&test_resource(&scratch));
    validate(&scratch, "app", &marathon_app_rules(), &app)
        .unwrap_or_else(|e| panic!("not a valid Marathon app:\n{e}\n{app:#}"));
    check_marathon_app(&app, &resource, "/team/fastdata");
    for (path, _, variable, expected) in ENV_OPTIONS {
        assert_eq!(app["env"][*variable], json!(expected), "{path}");
    }
    for (path, value, pointer) in APP_OPTIONS {
        let value: Value = serde_json::from_str(value).unwrap();
        assert_eq!(app.pointer(pointer), Some(&value), "{path} at {pointer}");
    }
    // The credential is mounted as a file and the scheduler is told where.
    assert_eq!(
        app["container"]["volumes"],
        json!([{ "containerPath": "secrets/service-account.json", "secret": "serviceCredential" }])
    );
    assert_eq!(
        app["env"]["DCOS_SERVICE_ACCOUNT_CREDENTIAL"],
        json!("secrets/service-account.json")
    );
    let credential = service_account_credential("fastdata-sa");
    let secrets = SecretStore::from([("team/fastdata/sa-credential".to_owned(), credential)]);
    let (sandbox, env) = marathon_sandbox(&app, &resource, &secrets, &scratch);
    let out = check_config(&sandbox, &env, &app);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "the scheduler refuses the environment of a strict-mode folder install:\n{}{stdout}",
        text(&out.stderr)
    );
    for expected in [
        // The folder is escaped for Mesos and ZooKeeper; the role and principal are the options.
        "service_name: \"team__fastdata\"",
        "role: \"sensors-quota\"",
        "principal: \"fastdata-sa\"",
        "uid: \"fastdata-sa\"",
        "failover_timeout: 1209600s",
        "\"https://m1.example:5050\"",
        "\"https://m2.example:5050\"",
        "zk_connect: \"zk-1.example:2181,zk-2.example:2181\"",
        "api_addr: 0.0.0.0:31001",
        "grpc_addr: 0.0.0.0:31002",
        // Quotes and backslashes survive Cosmos' JSON escaping and the environment.
        "\"client.id\": \"fast\\\"data\\\\1\"",
        "group: \"plant 7 \\\"sink\\\"\"",
        "partitions: 48",
        "replication: \"dc1:3,dc2:2\"",
        "cassandra_local_dc: Some(",
        "\"sensor_writer\"",
        "\"CASSANDRA_PASSWORD\"",
        "cassandra_password_secret: Some(",
        "\"team/fastdata/cassandra-password\"",
        "mode: Step",
        "scale_up_lag: 20000",
        "scale_down_lag: 2000",
        "min_consumers: 2",
        "max_consumers: 24",
        "step_interval: 30s",
        "stabilization_window: 300s",
        "cooldown: 0ns",
        "target_drain_time: 90s",
        "lag_tick: 500ms",
        "cpus: 1.5",
        "mem: 1024.0",
        "consumer_grace_period: 45s",
        "max_consumers_per_agent: None",
        "spread_zones: false",
        "driver: \"pxd-csi\"",
        "\"repl\": \"2\"",
        "\"size\": \"5\"",
        "producer_count: 2",
        "producer_rate: 2500.5",
        "producer_sensors: 200",
        "stats_interval: 2.5s",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} not in the checked configuration:\n{stdout}"
        );
    }
    assert!(
        !stdout.contains("PRIVATE KEY"),
        "the checked configuration shows the service account's key"
    );

    // service.principal, in permissive mode (no service account).
    let permissive = render(
        &scratch,
        Some(&json!({ "service": { "principal": "fastdata-permissive" } })),
    )
    .unwrap_or_else(|e| panic!("refused:\n{e}"));
    assert_eq!(
        permissive["env"]["FRAMEWORK_PRINCIPAL"],
        json!("fastdata-permissive")
    );
    let permissive_scratch = Scratch::new("permissive");
    let (sandbox, env) = marathon_sandbox(
        &permissive,
        &resource,
        &SecretStore::new(),
        &permissive_scratch,
    );
    let out = check_config(&sandbox, &env, &permissive);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("principal: \"fastdata-permissive\""));
}

#[test]
fn invalid_options_are_refused_naming_the_option() {
    let scratch = Scratch::new("invalid");
    let refused = [
        (
            json!({ "scaling": { "scale_up_lag": 0 } }),
            "/scaling/scale_up_lag",
        ),
        (json!({ "scaling": { "mode": "fast" } }), "/scaling/mode"),
        (
            json!({ "scaling": { "stabilization_window_secs": 90_000 } }),
            "/scaling/stabilization_window_secs",
        ),
        (
            json!({ "scaling": { "lag_tick_secs": 0.01 } }),
            "/scaling/lag_tick_secs",
        ),
        // A count rendered as a double (3.0E9) would not parse as u64 in the scheduler.
        (
            json!({ "scaling": { "scale_up_lag": 3_000_000_000_u64 } }),
            "/scaling/scale_up_lag",
        ),
        (
            json!({ "service": { "name": "Team/FastData" } }),
            "/service/name",
        ),
        (
            json!({ "service": { "name": "/team//fastdata" } }),
            "/service/name",
        ),
        (json!({ "service": { "role": "*" } }), "/service/role"),
        (
            json!({ "service": { "mesos_masters": "leader.mesos:5050" } }),
            "/service/mesos_masters",
        ),
        (
            json!({ "service": { "log_level": "verbose" } }),
            "/service/log_level",
        ),
        (
            json!({ "service": { "placement_constraints": [["hostname", "SOMEWHERE"]] } }),
            "/service/placement_constraints/0/1",
        ),
        (
            json!({ "service": { "service_account_secret": "fastdata/sa" } }),
            "/service",
        ),
        (
            json!({ "cassandra": { "username": "writer" } }),
            "/cassandra",
        ),
        (
            json!({ "cassandra": { "keyspace": "sensor-data" } }),
            "/cassandra/keyspace",
        ),
        (json!({ "kafka": { "brokers": "" } }), "/kafka/brokers"),
        (
            json!({ "kafka": { "properties": "security.protocol" } }),
            "/kafka/properties",
        ),
        (json!({ "consumer": { "cpus": "1" } }), "/consumer/cpus"),
        (json!({ "consumer": { "mem": 16 } }), "/consumer/mem"),
        (json!({ "volume": { "size_gb": 0 } }), "/volume/size_gb"),
        (json!({ "producer": { "count": -1 } }), "/producer/count"),
        // A misspelt section or option is refused, not silently ignored.
        (json!({ "sclaing": { "mode": "step" } }), "sclaing"),
        (json!({ "scaling": { "scale_uplag": 900 } }), "scale_uplag"),
    ];
    for (options, named) in refused {
        let problems = render(&scratch, Some(&options))
            .err()
            .unwrap_or_else(|| panic!("{options} was accepted"));
        assert!(
            problems.contains(named),
            "the refusal of {options} does not name {named}:\n{problems}"
        );
    }

    // One rule no draft-04 schema can state compares two options; Cosmos lets it through and
    // the scheduler stops at start with a sentence naming both (the package's pre-install
    // notes say so).
    let crossed = json!({ "scaling": { "scale_up_lag": 100, "scale_down_lag": 200 } });
    let app = render(&scratch, Some(&crossed)).expect("a schema cannot compare two options");
    let resource = read_json(&test_resource(&scratch));
    let (sandbox, env) = marathon_sandbox(&app, &resource, &SecretStore::new(), &scratch);
    let out = check_config(&sandbox, &env, &app);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("scale_down_lag (200) must be below scale_up_lag (100)"),
        "{stderr}"
    );
}

/// Lists a zip's entries with their unix modes (python3 is a bootstrap tool; unzip is not).
fn zip_entries(zip: &Path) -> BTreeMap<String, u32> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile\nfor i in zipfile.ZipFile(sys.argv[1]).infolist(): print(i.filename, i.external_attr >> 16)",
            zip.to_str().unwrap(),
        ])
        .output()
        .expect("run python3");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| {
            let (name, mode) = l.rsplit_once(' ').unwrap();
            (name.to_owned(), mode.parse::<u32>().unwrap() & 0o777)
        })
        .collect()
}

fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success());
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn release(args: &[&str]) -> Output {
    Command::new(repo().join("dev/release"))
        .args(args)
        .output()
        .expect("run dev/release (needs python3)")
}

#[test]
fn the_release_script_fills_resource_json_with_the_hashes_of_what_it_built() {
    let scratch = Scratch::new("release");
    // The debug builds stand in for the release builds (the script packages what it is given
    // exactly as what it builds; a release build costs minutes on this machine).
    let binaries_dir = scratch.path().join("bin");
    fs::create_dir_all(&binaries_dir).unwrap();
    for name in ["fastdata-scheduler", "fastdata-executor", "dcos-fastdata"] {
        std::os::unix::fs::symlink(binary(name), binaries_dir.join(name)).unwrap();
    }
    let out_dir = scratch.path().join("out");
    let args = [
        "--base-url",
        &format!("{BASE_URL}/"),
        "--binaries",
        binaries_dir.to_str().unwrap(),
        "--platforms",
        "linux",
        "--no-cross",
        "--out",
        out_dir.to_str().unwrap(),
    ];
    let first = release(&args);
    assert!(
        first.status.success(),
        "dev/release failed:\n{}{}",
        text(&first.stdout),
        text(&first.stderr)
    );

    // It says which glibc the agents need (the debug builds here need this machine's).
    let report = text(&first.stdout);
    for name in ["fastdata-scheduler", "fastdata-executor", "dcos-fastdata"] {
        assert!(
            report.contains(&format!("{name} (linux) needs glibc 2.")),
            "{report}"
        );
    }

    let resource = read_json(&out_dir.join("universe/resource.json"));
    validate(
        &scratch,
        "released-resource",
        &universe_resource_v3_rules(),
        &resource,
    )
    .unwrap_or_else(|e| panic!("the released resource.json breaks the v3 rules:\n{e}"));
    assert!(!resource.to_string().contains("{{"), "{resource:#}");
    for (alias, file) in [
        ("fastdata-scheduler", "fastdata-scheduler"),
        ("fastdata-executor", "fastdata-executor"),
    ] {
        assert_eq!(
            resource["assets"]["uris"][alias],
            json!(format!("{BASE_URL}/{file}"))
        );
        assert_eq!(
            sha256_of(&out_dir.join(file)),
            sha256_of(binary(file)),
            "{file} is the binary it was given"
        );
    }
    let linux = &resource["cli"]["binaries"]["linux"]["x86-64"];
    let zip = out_dir.join("dcos-fastdata-linux-x86-64.zip");
    assert_eq!(
        linux["url"],
        json!(format!("{BASE_URL}/dcos-fastdata-linux-x86-64.zip"))
    );
    assert_eq!(linux["kind"], json!("zip"));
    assert_eq!(
        linux["contentHash"],
        json!([{ "algo": "sha256", "value": sha256_of(&zip) }])
    );
    assert!(
        resource["cli"]["binaries"].get("darwin").is_none(),
        "--platforms linux lists only linux"
    );

    // The plugin zip: the executable, and the plugin files once the CLI ships them.
    let entries = zip_entries(&zip);
    assert_eq!(
        entries.get("bin/dcos-fastdata"),
        Some(&0o755),
        "{entries:?}"
    );
    let plugin_toml = repo().join("cli/plugin/plugin.toml");
    assert_eq!(
        entries.contains_key("plugin.toml"),
        plugin_toml.is_file(),
        "{entries:?}"
    );

    // SHA256SUMS agrees with sha256sum itself.
    let check = Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(&out_dir)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check.stdout));

    // The released package directory renders, and points the app at the released files.
    let rendered = universe(&[
        "render",
        "--package",
        out_dir.join("universe").to_str().unwrap(),
    ]);
    assert!(rendered.status.success(), "{}", text(&rendered.stderr));
    let app: Value = serde_json::from_slice(&rendered.stdout).unwrap();
    check_marathon_app(&app, &resource, "fastdata");

    // Idempotent and reproducible: a second run gives the same bytes.
    let sums = fs::read_to_string(out_dir.join("SHA256SUMS")).unwrap();
    let second = release(&args);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert_eq!(
        fs::read_to_string(out_dir.join("SHA256SUMS")).unwrap(),
        sums
    );
    assert_eq!(read_json(&out_dir.join("universe/resource.json")), resource);

    // --verify notices a file that changed after the release.
    let mut bytes = fs::read(&zip).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&zip, bytes).unwrap();
    let verify = release(&[
        "--verify",
        out_dir.to_str().unwrap(),
        "--base-url",
        BASE_URL,
    ]);
    assert_eq!(verify.status.code(), Some(1));
    let stderr = text(&verify.stderr);
    assert!(
        stderr.contains("dcos-fastdata-linux-x86-64.zip does not match"),
        "{stderr}"
    );
    assert!(
        stderr.contains("sha256 of the linux x86-64 CLI does not match"),
        "{stderr}"
    );

    // A platform it can neither take nor build fails, saying how to provide it; nothing is
    // half-written over the previous release.
    let no_darwin = release(&[
        "--base-url",
        BASE_URL,
        "--binaries",
        binaries_dir.to_str().unwrap(),
        "--platforms",
        "linux,darwin",
        "--no-cross",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(no_darwin.status.code(), Some(1));
    let stderr = text(&no_darwin.stderr);
    assert!(stderr.contains("--cli-binary darwin=PATH"), "{stderr}");
    assert!(
        !out_dir.join("dcos-fastdata-darwin-x86-64.zip").exists(),
        "a failed release wrote a darwin zip"
    );
}
