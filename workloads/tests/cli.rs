//! The binaries' command lines: help, and bad configuration answered with one sentence
//! saying what to fix (exit status 2). No services needed.

use std::process::Command;

fn run(binary: &str, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(binary)
        .args(args)
        .env_remove("FASTDATA_KAFKA_BROKERS")
        .env_remove("FASTDATA_CASSANDRA_CONTACT_POINTS")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const PRODUCER: &str = env!("CARGO_BIN_EXE_fastdata-producer");
const CONSUMER: &str = env!("CARGO_BIN_EXE_fastdata-consumer");
const CHECK: &str = env!("CARGO_BIN_EXE_fastdata-cassandra-check");

#[test]
fn help_lists_the_options_and_their_environment_variables() {
    for (binary, expected) in [
        (
            PRODUCER,
            &["--rate", "FASTDATA_KAFKA_BROKERS", "unthrottled"][..],
        ),
        (
            CONSUMER,
            &[
                "--grace-period",
                "--spool-dir",
                "FASTDATA_CASSANDRA_CONTACT_POINTS",
            ][..],
        ),
        (
            CHECK,
            &[
                "--interval",
                "--rounds",
                "FASTDATA_CASSANDRA_CONTACT_POINTS",
            ][..],
        ),
    ] {
        let (code, stdout, _) = run(binary, &["--help"]);
        assert_eq!(code, 0, "{binary} --help");
        for word in expected {
            assert!(
                stdout.contains(word),
                "{binary} --help lacks {word}:\n{stdout}"
            );
        }
    }
}

#[test]
fn bad_configuration_is_one_sentence_saying_what_to_fix() {
    let consumer_base = [
        "--kafka-brokers",
        "127.0.0.1:1",
        "--cassandra-contact-points",
        "127.0.0.1:1",
    ];
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            CONSUMER,
            [&consumer_base[..], &["--max-in-flight", "0"]].concat(),
            "error: --max-in-flight must be at least 1\n",
        ),
        (
            CONSUMER,
            [&consumer_base[..], &["--keyspace", "my-keyspace"]].concat(),
            "error: keyspace \"my-keyspace\" is not a valid name; use a letter followed by up to 47 letters, digits or underscores\n",
        ),
        (
            PRODUCER,
            vec!["--kafka-brokers", "127.0.0.1:1", "--sensors", "0"],
            "error: --sensors must be at least 1\n",
        ),
        (
            PRODUCER,
            vec!["--kafka-brokers", "127.0.0.1:1", "--topic", "no spaces"],
            "error: topic \"no spaces\" is not a valid Kafka topic name; use 1 to 249 letters, digits, '.', '_' or '-'\n",
        ),
        (
            CHECK,
            vec![
                "--cassandra-contact-points",
                "127.0.0.1:1",
                "--read-back",
                "0",
            ],
            "error: --read-back must be at least 1\n",
        ),
    ];
    for (binary, args, expected) in cases {
        let (code, _, stderr) = run(binary, &args);
        assert_eq!((code, stderr.as_str()), (2, expected), "{binary} {args:?}");
    }
    // Values clap parses with our parsers: its own error format, naming the option and the fix.
    let (code, _, stderr) = run(PRODUCER, &["--kafka-brokers", "x:1", "--rate", "fast"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("--rate") && stderr.contains("events per second"),
        "{stderr}"
    );
    let (code, _, stderr) = run(CONSUMER, &["--cassandra-contact-points", "x:1"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--kafka-brokers"), "{stderr}");
}
