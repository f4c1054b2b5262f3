//! Smoke test of the real services every other end-to-end test relies on: a message through
//! Kafka with rdkafka, a row through Cassandra with the scylla driver, and a znode through
//! ZooKeeper. Start them with `dev/services up` (or run everything with `dev/test`).

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use fastdata_tests::{cassandra_contact_points, kafka_brokers, unique_name, zk_connect};
use rdkafka::{
    ClientConfig, Message,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{Consumer, StreamConsumer},
    producer::{FutureProducer, FutureRecord},
};
use scylla::client::session_builder::SessionBuilder;
use zookeeper_client::{Acls, CreateMode};

#[tokio::test]
async fn kafka_round_trip() -> Result<()> {
    let brokers = kafka_brokers();
    let topic = unique_name("smoke");

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()?;
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await?;
    for result in created {
        result.map_err(|(name, code)| anyhow::anyhow!("creating topic {name}: {code}"))?;
    }

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()?;
    let payload = format!("hello from {topic}");
    producer
        .send(
            FutureRecord::to(&topic).key("sensor-0").payload(&payload),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .context("producing the smoke message")?;

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", unique_name("smoke-group"))
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[&topic])?;
    let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .context("no message consumed within 30 s")??;
    ensure!(
        message.key() == Some(b"sensor-0".as_slice()),
        "wrong key: {:?}",
        message.key()
    );
    ensure!(
        message.payload() == Some(payload.as_bytes()),
        "wrong payload: {:?}",
        message.payload()
    );

    admin.delete_topics(&[&topic], &AdminOptions::new()).await?;
    Ok(())
}

#[tokio::test]
async fn cassandra_write_and_read() -> Result<()> {
    let session = SessionBuilder::new()
        .known_nodes(cassandra_contact_points())
        .connection_timeout(Duration::from_secs(10))
        .build()
        .await
        .context("connecting to Cassandra")?;
    let keyspace = unique_name("smoke");
    session
        .query_unpaged(
            format!(
                "CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
            &[],
        )
        .await?;
    session
        .query_unpaged(
            format!(
                "CREATE TABLE {keyspace}.readings (sensor_id text PRIMARY KEY, temperature double)"
            ),
            &[],
        )
        .await?;
    let insert = session
        .prepare(format!(
            "INSERT INTO {keyspace}.readings (sensor_id, temperature) VALUES (?, ?)"
        ))
        .await?;
    session
        .execute_unpaged(&insert, ("sensor-7", 71.5_f64))
        .await?;

    let rows = session
        .query_unpaged(
            format!("SELECT sensor_id, temperature FROM {keyspace}.readings WHERE sensor_id = ?"),
            ("sensor-7",),
        )
        .await?
        .into_rows_result()?;
    let found: Vec<(String, f64)> = rows.rows::<(String, f64)>()?.collect::<Result<_, _>>()?;
    ensure!(
        found == vec![("sensor-7".to_owned(), 71.5)],
        "unexpected rows: {found:?}"
    );

    session
        .query_unpaged(format!("DROP KEYSPACE {keyspace}"), &[])
        .await?;
    Ok(())
}

#[tokio::test]
async fn zookeeper_znode_round_trip() -> Result<()> {
    let client = zookeeper_client::Client::connect(&zk_connect())
        .await
        .context("connecting to ZooKeeper")?;
    let path = format!("/{}", unique_name("smoke"));
    client
        .create(
            &path,
            b"framework-id",
            &CreateMode::Persistent.with_acls(Acls::anyone_all()),
        )
        .await
        .with_context(|| format!("creating {path}"))?;
    let (data, stat) = client.get_data(&path).await?;
    ensure!(data == b"framework-id", "unexpected data {data:?}");
    // Versioned delete: the write we made is version 0.
    client.delete(&path, Some(stat.version)).await?;
    ensure!(
        client.check_stat(&path).await?.is_none(),
        "{path} still exists after delete"
    );
    Ok(())
}
