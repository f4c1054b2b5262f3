//! The REST API over real HTTP on loopback: every documented endpoint answers as the OpenAPI
//! document says (status code, content type, JSON schema), scaling changes go through the run
//! loop and take effect, bad input gets a 400 listing every field, and the DC/OS status-code
//! contracts hold.

mod api_common;

use std::time::Duration;

use api_common::{Loop, TestApi, assert_documented, assert_valid, now_ms, openapi, schema_errors};
use fastdata_scheduler::api::sample::{sample_snapshot, stale_lag};
use fastdata_scheduler::api::{ApiConfig, ApiError};
use fastdata_scheduler::status::{Phase, PlanStatus};
use serde_json::{Value, json};

struct Answer {
    code: u16,
    content_type: String,
    body: Vec<u8>,
    allow: Option<String>,
    cache_control: Option<String>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {:?} {}",
                self.content_type,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

async fn call(method: reqwest::Method, url: &str, body: Option<&str>) -> Answer {
    let client = reqwest::Client::new();
    let mut request = client.request(method, url).timeout(Duration::from_secs(30));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    let response = request.send().await.expect("the API answers");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().expect("ASCII header").to_owned())
    };
    let content_type = header("content-type").unwrap_or_default();
    let allow = header("allow");
    let cache_control = header("cache-control");
    let code = response.status().as_u16();
    let body = response.bytes().await.expect("a body").to_vec();
    Answer {
        code,
        content_type,
        body,
        allow,
        cache_control,
    }
}

async fn get(url: &str) -> Answer {
    call(reqwest::Method::GET, url, None).await
}

async fn put(url: &str, body: &str) -> Answer {
    call(reqwest::Method::PUT, url, Some(body)).await
}

#[tokio::test]
async fn every_documented_endpoint_answers_as_documented() {
    let api = TestApi::start(sample_snapshot(now_ms())).await;
    let doc = openapi();
    let paths = doc["paths"].as_object().expect("paths");
    let mut checked = 0;
    for (template, operations) in paths {
        if operations.get("get").is_none() {
            continue;
        }
        let path = template.replace("{plan}", "deploy");
        let answer = get(&api.url(&path)).await;
        assert_documented(
            &doc,
            template,
            "get",
            answer.code,
            &answer.content_type,
            &answer.body,
        );
        assert!(
            answer.code < 300,
            "GET {path} answered {} for the sample",
            answer.code
        );
        assert_eq!(
            answer.cache_control.as_deref(),
            Some("no-store"),
            "GET {path} may be cached"
        );
        checked += 1;
    }
    assert_eq!(checked, paths.len(), "every path has a GET");

    // The two writes, each with a valid change.
    for (path, body) in [
        ("/v1/scaling", r#"{"scale_up_lag": 800}"#),
        ("/v1/producers", r#"{"rate": 1500}"#),
    ] {
        let answer = put(&api.url(path), body).await;
        assert_eq!(answer.code, 200, "PUT {path}");
        assert_documented(
            &doc,
            path,
            "put",
            answer.code,
            &answer.content_type,
            &answer.body,
        );
    }
    api.shutdown().await;
}

#[tokio::test]
async fn the_served_document_is_the_one_tested_and_its_schemas_are_valid() {
    let api = TestApi::start(sample_snapshot(now_ms())).await;
    let served = get(&api.url("/v1/openapi.json")).await;
    assert_eq!(served.code, 200);
    assert_eq!(served.json(), openapi());
    let doc = openapi();
    assert_eq!(doc["openapi"], "3.1.0");
    // Every $ref points at something, and operation ids are unique.
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    out.push(target.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut targets = Vec::new();
    refs(&doc, &mut targets);
    assert!(targets.len() > 50, "the document uses its components");
    for target in targets {
        let pointer = target.strip_prefix('#').expect("a local reference");
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {target}");
    }
    let mut ids = std::collections::HashSet::new();
    for operations in doc["paths"].as_object().expect("paths").values() {
        for operation in operations.as_object().expect("operations").values() {
            let id = operation["operationId"].as_str().expect("an operationId");
            assert!(ids.insert(id.to_owned()), "duplicate operationId {id}");
        }
    }
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        // Each component is a valid JSON Schema 2020-12 document (its $refs aside).
        let errors: Vec<String> = jsonschema::meta::validate(schema)
            .err()
            .map(|e| vec![e.to_string()])
            .unwrap_or_default();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
    api.shutdown().await;
}

/// The schemas are strict enough to catch drift: an undocumented field, a missing one, a
/// wrong type, a bad timestamp or an unknown enum value in a real answer are all refused.
#[tokio::test]
async fn the_schemas_refuse_a_drifting_answer() {
    let api = TestApi::start(sample_snapshot(now_ms())).await;
    let doc = openapi();
    let status = get(&api.url("/v1/status")).await.json();
    let pointer = "/components/schemas/Status";
    assert!(schema_errors(&doc, pointer, &status).is_empty());
    type Mutation = Box<dyn Fn(&mut Value)>;
    let mutations: Vec<(&str, Mutation)> = vec![
        (
            "an undocumented field",
            Box::new(|v| v["surprise"] = json!(1)),
        ),
        (
            "a missing field",
            Box::new(|v| {
                v.as_object_mut().expect("object").remove("held_reason");
            }),
        ),
        (
            "a wrong type",
            Box::new(|v| v["lag"]["total"] = json!("12400")),
        ),
        (
            "a bad timestamp",
            Box::new(|v| v["at"] = json!("yesterday")),
        ),
        (
            "an unknown enum value",
            Box::new(|v| v["lag"]["partitions"][0]["status"] = json!("late")),
        ),
        (
            "a nested undocumented field",
            Box::new(|v| v["decisions"][0]["input"]["extra"] = json!(true)),
        ),
    ];
    for (what, mutate) in mutations {
        let mut drifted = status.clone();
        mutate(&mut drifted);
        assert!(
            !schema_errors(&doc, pointer, &drifted).is_empty(),
            "the Status schema accepts {what}"
        );
    }
    api.shutdown().await;
}

#[tokio::test]
async fn status_shows_what_an_operator_asks_first() {
    let snapshot = sample_snapshot(now_ms());
    let api = TestApi::start(snapshot.clone()).await;
    let status = get(&api.url("/v1/status")).await.json();
    assert_eq!(status["service_name"], "fastdata");
    assert_eq!(status["phase"]["state"], "running");
    assert_eq!(status["lag"]["total"], 12_400);
    assert_eq!(status["lag"]["status"], "lagging");
    assert_eq!(status["lag"]["partitions"][0]["lag"], 4_100);
    assert_eq!(status["lag"]["partitions"][0]["status"], "lagging");
    assert_eq!(
        status["lag"]["partitions"][5]["committed_offset"],
        Value::Null,
        "a partition without a commit shows null, not a number"
    );
    assert_eq!(status["lag"]["produce_rate_per_sec"], 3_100.4);
    assert_eq!(status["lag"]["seconds_behind"], 7.9);
    assert_eq!(
        status["consumers"],
        json!({"desired": 4, "running": 3, "min": 1, "max": 10})
    );
    assert_eq!(status["sink"]["healthy"], true);
    assert_eq!(
        status["held_reason"],
        "consumer-3 waiting for an offer: needs 1 cpu and 512 MB, best offer has 0.5 cpu on agent-2"
    );
    assert_eq!(status["plan"]["status"], "IN_PROGRESS");
    let decisions = status["decisions"].as_array().expect("decisions");
    assert_eq!(decisions.len(), 10);
    let newest = snapshot.decisions.last().expect("decisions");
    assert_eq!(decisions[0]["reason"], newest.decision.reason.as_str());
    assert_eq!(
        status["summary"],
        "running · 3 of 4 consumers running · lag 12,400 (lagging)"
    );

    // When nothing is happening because Cassandra fails, the status says so.
    api.publish(|s| {
        s.sink_healthy_consumers = 1;
        s.sink_unhealthy_consumers = 2;
        s.sink_error = Some("WriteTimeout: 127.0.0.1:9042".into());
        s.held_reason = Some("scale-up held: Cassandra unhealthy on 2 of 3 consumers".into());
        s.lag = Some(stale_lag(s.at_unix_ms));
    });
    let status = get(&api.url("/v1/status")).await.json();
    assert_eq!(
        status["held_reason"],
        "scale-up held: Cassandra unhealthy on 2 of 3 consumers"
    );
    assert_eq!(status["sink"]["healthy"], false);
    assert_eq!(
        status["sink"]["summary"],
        "Cassandra writes failing on 2 of 3 consumers: WriteTimeout: 127.0.0.1:9042"
    );
    assert_eq!(status["lag"]["stale"]["failures"], 3);
    assert_valid(
        &openapi(),
        "/components/schemas/Status",
        &status,
        "stale status",
    );
    api.shutdown().await;
}

#[tokio::test]
async fn a_partial_scaling_change_goes_through_the_loop_and_shows_everywhere() {
    let api = TestApi::start(sample_snapshot(now_ms())).await;
    let before = get(&api.url("/v1/scaling")).await.json();
    assert_eq!(before["scale_up_lag"], 500);

    let answer = put(
        &api.url("/v1/scaling"),
        r#"{"scale_up_lag": 2000, "mode": "step", "step_interval_secs": 7.5}"#,
    )
    .await;
    assert_eq!(
        answer.code,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let config = answer.json();
    assert_eq!(config["scale_up_lag"], 2000);
    assert_eq!(config["mode"], "step");
    assert_eq!(config["step_interval_secs"], 7.5);
    assert_eq!(
        config["scale_down_lag"], 100,
        "untouched fields keep their value"
    );
    assert_eq!(config["max_consumers"], 10);

    assert_eq!(get(&api.url("/v1/scaling")).await.json(), config);
    assert_eq!(get(&api.url("/v1/status")).await.json()["scaling"], config);
    // The metrics show the threshold in force too.
    let metrics =
        String::from_utf8(get(&api.url("/v1/metrics/prometheus")).await.body).expect("UTF-8");
    assert!(
        metrics
            .lines()
            .any(|l| l == "fastdata_scaling_scale_up_lag_messages 2000")
    );
    api.shutdown().await;
}

#[tokio::test]
async fn bad_scaling_input_is_a_400_listing_every_field_and_rule() {
    let api = TestApi::start(sample_snapshot(now_ms())).await;
    let doc = openapi();
    // (body, content type, expected (field, part of the message) in order)
    /// (field, part of its message)
    type Problem<'a> = (&'a str, &'a str);
    let cases: Vec<(&str, Option<&str>, Vec<Problem<'_>>)> = vec![
        (
            "{\"scale_up_lag\": 10",
            None,
            vec![("body", "not valid JSON")],
        ),
        ("", None, vec![("body", "the body is empty")]),
        ("[]", None, vec![("body", "must be a JSON object")]),
        (
            r#"{"scale_up": 10}"#,
            None,
            vec![("scale_up", "did you mean \"scale_up_lag\"?")],
        ),
        (
            r#"{"scale_up_lag": "many", "max_consumers": -2, "mode": "fast", "cooldown_secs": "1m"}"#,
            None,
            vec![
                ("mode", "must be \"step\" or \"proportional\", not \"fast\""),
                ("scale_up_lag", "whole number of messages"),
                ("max_consumers", "whole number of consumers"),
                ("cooldown_secs", "number of seconds"),
            ],
        ),
        (
            r#"{"scale_up_lag": 50}"#,
            None,
            vec![(
                "scale_up_lag",
                "scale_down_lag (100) must be below scale_up_lag (50)",
            )],
        ),
        (
            r#"{"min_consumers": 5, "max_consumers": 2, "headroom": 1.5, "stabilization_window_secs": -1}"#,
            Some("application/x-www-form-urlencoded"),
            vec![
                ("stabilization_window_secs", "must not be negative"),
                (
                    "min_consumers",
                    "min_consumers (5) must not exceed max_consumers (2)",
                ),
                ("headroom", "fraction between 0 and 1"),
            ],
        ),
    ];
    for (body, content_type, expected) in cases {
        let client = reqwest::Client::new();
        let response = client
            .put(api.url("/v1/scaling"))
            .header("content-type", content_type.unwrap_or("application/json"))
            .body(body.to_owned())
            .send()
            .await
            .expect("answers");
        let code = response.status().as_u16();
        let ct = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.bytes().await.expect("body");
        assert_eq!(code, 400, "{body}: {}", String::from_utf8_lossy(&bytes));
        let error =
            assert_documented(&doc, "/v1/scaling", "put", code, &ct, &bytes).expect("a JSON error");
        assert_eq!(error["error"], "bad_request");
        let problems = error["problems"].as_array().expect("problems");
        assert_eq!(problems.len(), expected.len(), "{body}: {error:#}");
        for (problem, (field, message)) in problems.iter().zip(&expected) {
            assert_eq!(problem["field"], *field, "{body}: {error:#}");
            let text = problem["message"].as_str().expect("message");
            assert!(text.contains(message), "{body}: {text:?} lacks {message:?}");
            assert!(
                error["message"].as_str().expect("message").contains(text),
                "the summary message repeats every problem"
            );
        }
    }
    // Nothing of it was applied.
    let config = get(&api.url("/v1/scaling")).await.json();
    assert_eq!(config["scale_up_lag"], 500);
    assert_eq!(config["min_consumers"], 1);
    api.shutdown().await;
}

#[tokio::test]
async fn the_producer_rate_goes_through_the_loop_and_shows_everywhere() {
    let api = TestApi::start(sample_snapshot(now_ms())).await;
    let doc = openapi();
    let before = get(&api.url("/v1/producers")).await;
    assert_eq!(before.code, 200);
    assert_eq!(before.json(), json!({"tasks": 1, "rate": 800.0}));

    for (body, rate) in [(r#"{"rate": 2500}"#, 2500.0), (r#"{"rate": 0}"#, 0.0)] {
        let answer = put(&api.url("/v1/producers"), body).await;
        assert_eq!(
            answer.code,
            200,
            "{body}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let producers = assert_documented(
            &doc,
            "/v1/producers",
            "put",
            answer.code,
            &answer.content_type,
            &answer.body,
        )
        .expect("JSON");
        assert_eq!(producers, json!({"tasks": 1, "rate": rate}), "{body}");
        assert_eq!(get(&api.url("/v1/producers")).await.json(), producers);
        let status = get(&api.url("/v1/status")).await.json();
        assert_eq!(status["producers"], producers, "the status shows the rate");
        assert_valid(&doc, "/components/schemas/Status", &status, "status");
    }
    api.shutdown().await;
}

#[tokio::test]
async fn bad_producer_rates_are_a_400_and_change_nothing() {
    let api = TestApi::start(sample_snapshot(now_ms())).await;
    let doc = openapi();
    // (body, expected (field, part of the message) in order)
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("", vec![("body", "the body is empty")]),
        ("{\"rate\": ", vec![("body", "not valid JSON")]),
        ("[2000]", vec![("body", "must be a JSON object")]),
        ("{}", vec![("rate", "rate is required")]),
        (
            r#"{"rate": "2k"}"#,
            vec![("rate", "must be a number of events per second")],
        ),
        (
            r#"{"rates": 10}"#,
            vec![
                ("rate", "rate is required"),
                ("rates", "did you mean \"rate\"?"),
            ],
        ),
        (
            r#"{"rate": 10, "sensors": 3}"#,
            vec![("sensors", "the only field is \"rate\"")],
        ),
        // Range problems come from the run loop's own rule.
        (r#"{"rate": -5}"#, vec![("rate", "-5 is not a rate")]),
        (
            r#"{"rate": 2e6}"#,
            vec![("rate", "from 0 (paused) to 1000000")],
        ),
    ];
    for (body, expected) in cases {
        let answer = put(&api.url("/v1/producers"), body).await;
        assert_eq!(
            answer.code,
            400,
            "{body}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let error = assert_documented(
            &doc,
            "/v1/producers",
            "put",
            answer.code,
            &answer.content_type,
            &answer.body,
        )
        .expect("a JSON error");
        assert_eq!(error["error"], "bad_request");
        let message = error["message"].as_str().expect("message");
        assert!(
            message.starts_with("the producer rate change was refused"),
            "{message}"
        );
        let problems = error["problems"].as_array().expect("problems");
        assert_eq!(problems.len(), expected.len(), "{body}: {error:#}");
        for (problem, (field, part)) in problems.iter().zip(&expected) {
            assert_eq!(problem["field"], *field, "{body}: {error:#}");
            let text = problem["message"].as_str().expect("message");
            assert!(text.contains(part), "{body}: {text:?} lacks {part:?}");
        }
    }
    assert_eq!(
        get(&api.url("/v1/producers")).await.json()["rate"],
        800.0,
        "nothing was applied"
    );
    api.shutdown().await;
}

#[tokio::test]
async fn an_oversized_body_is_a_json_413() {
    let api = TestApi::start(sample_snapshot(now_ms())).await;
    let huge = format!("{{\"mode\": \"{}\"}}", "x".repeat(100 * 1024));
    for path in ["/v1/scaling", "/v1/producers"] {
        let answer = put(&api.url(path), &huge).await;
        assert_eq!(answer.code, 413, "{path}");
        assert_documented(
            &openapi(),
            path,
            "put",
            answer.code,
            &answer.content_type,
            &answer.body,
        );
        assert_eq!(answer.json()["error"], "payload_too_large");
    }
    api.shutdown().await;
}

#[tokio::test]
async fn a_loop_that_does_not_answer_gives_503_not_a_hang() {
    for behaviour in [Loop::Silent, Loop::Gone] {
        let api = TestApi::start_with(
            sample_snapshot(now_ms()),
            behaviour,
            Duration::from_millis(300),
        )
        .await;
        for (path, body) in [
            ("/v1/scaling", r#"{"scale_up_lag": 900}"#),
            ("/v1/producers", r#"{"rate": 900}"#),
        ] {
            let answer = put(&api.url(path), body).await;
            assert_eq!(answer.code, 503, "{behaviour:?} {path}");
            assert_documented(
                &openapi(),
                path,
                "put",
                answer.code,
                &answer.content_type,
                &answer.body,
            );
            let error = answer.json();
            assert_eq!(error["error"], "unavailable");
            let expected = match behaviour {
                Loop::Silent => format!(
                    "did not answer within 0.3 s (it may be busy persisting state to ZooKeeper); check GET {path}"
                ),
                _ => "shutting down".to_owned(),
            };
            assert!(
                error["message"]
                    .as_str()
                    .expect("message")
                    .contains(&expected),
                "{behaviour:?}: {error}"
            );
        }
        assert_eq!(
            get(&api.url("/v1/producers")).await.json()["rate"],
            800.0,
            "{behaviour:?}: nothing was applied"
        );
        api.shutdown().await;
    }
}

#[tokio::test]
async fn health_answers_the_sdk_code_of_each_phase() {
    let api = TestApi::start(sample_snapshot(now_ms())).await;
    let doc = openapi();
    let fatal = Phase::Fatal {
        message: "Mesos refused the framework: Framework has been removed".into(),
        remedy: "delete the znode /dcos-service-fastdata/FrameworkID, then restart the scheduler"
            .into(),
    };
    let cases = [
        (Phase::WaitingForLock, PlanStatus::InProgress, 0, 318),
        (
            Phase::Subscribing {
                last_error: Some("connection refused".into()),
            },
            PlanStatus::InProgress,
            0,
            208,
        ),
        (
            Phase::Reconciling { pending: 3 },
            PlanStatus::InProgress,
            0,
            203,
        ),
        (Phase::Running, PlanStatus::InProgress, 0, 202),
        (Phase::Running, PlanStatus::Complete, 0, 200),
        (Phase::Running, PlanStatus::Complete, 1, 206),
        (Phase::Running, PlanStatus::Error, 0, 500),
        (fatal, PlanStatus::Error, 0, 503),
    ];
    for (phase, plan, unhealthy, code) in cases {
        api.publish(|s| {
            s.phase = phase.clone();
            s.plan = plan;
            s.sink_unhealthy_consumers = unhealthy;
        });
        let answer = get(&api.url("/v1/health")).await;
        assert_eq!(answer.code, code, "{phase:?} {plan:?}");
        let body = assert_documented(
            &doc,
            "/v1/health",
            "get",
            answer.code,
            &answer.content_type,
            &answer.body,
        )
        .expect("JSON");
        assert_eq!(body["value"], code);
        if code == 503 {
            assert_eq!(
                body["message"],
                "Mesos refused the framework: Framework has been removed"
            );
            assert!(
                body["remedy"]
                    .as_str()
                    .expect("a remedy")
                    .contains("/dcos-service-fastdata/FrameworkID")
            );
        }
    }
    api.shutdown().await;
}

#[tokio::test]
async fn plans_and_framework_id_keep_the_cosmos_contracts() {
    let api = TestApi::start(sample_snapshot(now_ms())).await;
    let doc = openapi();
    assert_eq!(get(&api.url("/v1/plans")).await.json(), json!(["deploy"]));
    for (plan, code) in [
        (PlanStatus::InProgress, 202),
        (PlanStatus::Complete, 200),
        (PlanStatus::Error, 417),
    ] {
        api.publish(|s| s.plan = plan);
        let answer = get(&api.url("/v1/plans/deploy")).await;
        assert_eq!(answer.code, code, "{plan:?}");
        let body = assert_documented(
            &doc,
            "/v1/plans/{plan}",
            "get",
            answer.code,
            &answer.content_type,
            &answer.body,
        )
        .expect("JSON");
        let steps: Vec<&str> = body["phases"][0]["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .map(|s| s["id"].as_str().expect("id"))
            .collect();
        assert_eq!(
            steps,
            ["consumer-0", "consumer-1", "consumer-2", "consumer-3"],
            "one step per consumer slot"
        );
    }
    let unknown = get(&api.url("/v1/plans/recovery")).await;
    assert_eq!(unknown.code, 404);
    assert!(
        unknown.json()["message"]
            .as_str()
            .expect("message")
            .contains("\"deploy\"")
    );

    let id = get(&api.url("/v1/state/frameworkId")).await;
    assert_eq!(id.code, 200);
    assert_eq!(
        id.json(),
        json!(["7c1d3b5e-2f0a-4d8e-9b61-0c4f5a7e3d21-0001"])
    );
    api.publish(|s| s.framework_id = None);
    let none = get(&api.url("/v1/state/frameworkId")).await;
    assert_eq!(none.code, 404);
    assert_documented(
        &doc,
        "/v1/state/frameworkId",
        "get",
        none.code,
        &none.content_type,
        &none.body,
    );
    api.shutdown().await;
}

/// One sample: metric name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// A strict reading of the Prometheus text format 0.0.4: every line is a comment or a
/// sample; names and label names are valid; HELP and TYPE come once, before the family's
/// samples; counters end in `_total`; values are numbers.
fn check_exposition(text: &str) -> Vec<Sample> {
    fn valid_name(name: &str, colon: bool) -> bool {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
    }
    let mut helped = std::collections::HashSet::new();
    let mut typed = std::collections::HashMap::new();
    let mut sampled = std::collections::HashSet::new();
    let mut samples = Vec::new();
    assert!(text.ends_with('\n'), "the exposition ends with a line feed");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(valid_name(name, true), "{line}");
            assert!(!help.is_empty(), "{line}");
            assert!(helped.insert(name.to_owned()), "second HELP: {line}");
            assert!(!sampled.contains(name), "HELP after samples: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter without _total: {line}");
            }
            assert!(
                typed.insert(name.to_owned(), kind.to_owned()).is_none(),
                "{line}"
            );
            assert!(!sampled.contains(name), "TYPE after samples: {line}");
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment: {line}");
        assert!(!line.is_empty(), "empty line");
        let (series, value) = line.rsplit_once(' ').expect("name value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, Vec::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels = Vec::new();
                let mut rest = body;
                while !rest.is_empty() {
                    let (key, after) = rest.split_once("=\"").expect("label=\"value\"");
                    assert!(valid_name(key, false), "label name {key:?}: {line}");
                    // The value ends at the first quote not escaped by a backslash.
                    let mut value = String::new();
                    let mut chars = after.char_indices();
                    let end = loop {
                        match chars.next() {
                            Some((_, '\\')) => match chars.next() {
                                Some((_, 'n')) => value.push('\n'),
                                Some((_, c @ ('\\' | '"'))) => value.push(c),
                                other => panic!("bad escape {other:?}: {line}"),
                            },
                            Some((i, '"')) => break i,
                            Some((_, c)) => value.push(c),
                            None => panic!("unterminated label value: {line}"),
                        }
                    };
                    labels.push((key.to_owned(), value));
                    rest = &after[end + 1..];
                    rest = rest.strip_prefix(',').unwrap_or(rest);
                }
                (name, labels)
            }
        };
        assert!(valid_name(name, true), "{line}");
        assert!(helped.contains(name), "no HELP before {line}");
        assert!(typed.contains_key(name), "no TYPE before {line}");
        sampled.insert(name.to_owned());
        samples.push((name.to_owned(), labels, value));
    }
    samples
}

#[tokio::test]
async fn metrics_are_valid_prometheus_text_with_lag_consumers_offers_and_tasks() {
    let api = TestApi::start(sample_snapshot(now_ms())).await;
    let answer = get(&api.url("/v1/metrics/prometheus")).await;
    assert_eq!(answer.code, 200);
    assert!(
        answer.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        answer.content_type
    );
    let text = String::from_utf8(answer.body).expect("UTF-8");
    let samples = check_exposition(&text);
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && l.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .unwrap_or_else(|| panic!("no sample {name} {labels:?} in\n{text}"))
            .2
    };
    assert_eq!(value("fastdata_lag_messages", &[]), 12_400.0);
    let per_partition: f64 = (0..6)
        .map(|p| {
            value(
                "fastdata_partition_lag_messages",
                &[("partition", &p.to_string())],
            )
        })
        .sum();
    assert_eq!(per_partition, 12_400.0);
    assert_eq!(
        value(
            "fastdata_partition_status",
            &[("partition", "1"), ("status", "lagging")]
        ),
        1.0
    );
    assert_eq!(value("fastdata_consumers_desired", &[]), 4.0);
    assert_eq!(value("fastdata_consumers_running", &[]), 3.0);
    assert_eq!(value("fastdata_scaling_changes_total", &[]), 5.0);
    assert_eq!(value("fastdata_offers_received_total", &[]), 412.0);
    assert_eq!(value("fastdata_offers_accepted_total", &[]), 9.0);
    assert_eq!(value("fastdata_offers_declined_total", &[]), 403.0);
    assert_eq!(value("fastdata_revives_total", &[]), 6.0);
    assert_eq!(value("fastdata_suppresses_total", &[]), 5.0);
    assert_eq!(
        value("fastdata_task_updates_total", &[("state", "TASK_KILLED")]),
        2.0
    );
    assert_eq!(
        value("fastdata_scheduler_phase", &[("phase", "running")]),
        1.0
    );
    api.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_get_json_errors() {
    let api = TestApi::start(sample_snapshot(now_ms())).await;
    let doc = openapi();
    let missing = get(&api.url("/v2/status")).await;
    assert_eq!(missing.code, 404);
    assert!(missing.content_type.starts_with("application/json"));
    let body = missing.json();
    assert_valid(&doc, "/components/schemas/ErrorBody", &body, "404");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("/v2/status")
    );

    for (method, path, allow) in [
        (reqwest::Method::DELETE, "/v1/scaling", "GET, PUT"),
        (reqwest::Method::POST, "/v1/producers", "GET, PUT"),
        (reqwest::Method::POST, "/v1/status", "GET"),
        (reqwest::Method::PUT, "/v1/health", "GET"),
    ] {
        let answer = call(method.clone(), &api.url(path), Some("{}")).await;
        assert_eq!(answer.code, 405, "{method} {path}");
        assert_eq!(answer.allow.as_deref(), Some(allow), "{method} {path}");
        let body = answer.json();
        assert_valid(&doc, "/components/schemas/ErrorBody", &body, "405");
        assert_eq!(body["error"], "method_not_allowed");
    }
    api.shutdown().await;
}

#[tokio::test]
async fn a_taken_port_is_an_error_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = taken.local_addr().expect("an address");
    let (_tx, status) = tokio::sync::watch::channel(std::sync::Arc::new(sample_snapshot(0)));
    let (requests, _inbox) = tokio::sync::mpsc::channel(1);
    let config = ApiConfig::new(addr, "127.0.0.1:0".parse().expect("an address"));
    let error = fastdata_scheduler::api::serve(config, status, requests, std::future::pending())
        .await
        .expect_err("the port is taken");
    assert!(
        matches!(error, ApiError::Bind { api: "REST", .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&format!("cannot listen for the REST API on {addr}")),
        "{message}"
    );
}

#[tokio::test]
async fn both_servers_stop_on_shutdown() {
    let api = TestApi::start(sample_snapshot(now_ms())).await;
    let rest = api.rest;
    let grpc = api.grpc;
    assert_eq!(get(&api.url("/v1/health")).await.code, 202);
    api.shutdown().await;
    for addr in [rest, grpc] {
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "{addr} still accepts connections"
        );
    }
}
