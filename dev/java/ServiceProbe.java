// ServiceProbe: checks that a local Kafka, Cassandra or ZooKeeper really answers.
//
// Run with Java's single-source launcher and the probe classpath that dev/services
// resolves with Maven (kafka-clients of the broker's version, the Cassandra Java
// driver and the ZooKeeper client):
//
//   java -cp "$(dev/services classpath probe)" dev/java/ServiceProbe.java kafka 127.0.0.1:9092
//   java -cp ... dev/java/ServiceProbe.java cassandra 127.0.0.1:9042 [--dc datacenter1]
//   java -cp ... dev/java/ServiceProbe.java zookeeper 127.0.0.1:2181
//   java -cp ... dev/java/ServiceProbe.java cql 127.0.0.1:9042 "STATEMENT" ["STATEMENT"...]
//
// The last form is not a probe: it runs CQL statements once (no retry) and prints the rows,
// for tests and debugging without cqlsh (`dev/services cql ...`).
//
// Common option: --timeout SECONDS (default 30). Until the deadline every failed attempt
// is retried once a second, so a caller can start the probe as soon as the process is
// up and let it wait. Exit code 0 and one line saying what worked on success; exit code
// 1 and the last error otherwise (2 for bad usage).

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.config.DefaultDriverOption;
import com.datastax.oss.driver.api.core.config.DriverConfigLoader;
import com.datastax.oss.driver.api.core.cql.ColumnDefinition;
import com.datastax.oss.driver.api.core.cql.ResultSet;
import com.datastax.oss.driver.api.core.cql.Row;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public class ServiceProbe {

    /** One attempt at talking to the service; returns the success message or throws. */
    interface Attempt {
        String run(long deadlineNanos) throws Exception;
    }

    public static void main(String[] args) {
        // The client libraries log connection failures at WARN on every retry; while we
        // wait for a service that is still starting, that is noise. Overridable with -D.
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "error");
        }
        // No SASL/Kerberos on a local ZooKeeper: don't let the client look for a JAAS file.
        System.setProperty("zookeeper.sasl.client", "false");

        if (args.length < 2) {
            usage("missing arguments");
        }
        String service = args[0];
        String address = args[1];
        long timeoutSeconds = 30;
        String topic = "fastdata-probe";
        String dataCenter = "datacenter1";
        List<String> statements = new ArrayList<>();
        for (int i = 2; i < args.length; i++) {
            String opt = args[i];
            if (!opt.startsWith("--")) {
                statements.add(opt);
                continue;
            }
            if (i + 1 >= args.length) {
                usage("option " + opt + " needs a value");
            }
            String value = args[++i];
            switch (opt) {
                case "--timeout" -> timeoutSeconds = Long.parseLong(value);
                case "--topic" -> topic = value;
                case "--dc" -> dataCenter = value;
                default -> usage("unknown option " + opt);
            }
        }
        InetSocketAddress target = parseAddress(address);
        if (service.equals("cql")) {
            System.exit(runCql(target, dataCenter, statements));
        }
        final String probeTopic = topic;
        final String probeDc = dataCenter;
        Attempt attempt = switch (service) {
            case "kafka" -> deadline -> probeKafka(address, probeTopic, deadline);
            case "cassandra" -> deadline -> probeCassandra(target, probeDc, deadline);
            case "zookeeper" -> deadline -> probeZooKeeper(address, target, deadline);
            default -> {
                usage("unknown service " + service);
                yield null;
            }
        };
        if (!statements.isEmpty()) {
            usage("unexpected argument " + statements.get(0));
        }
        System.exit(retryUntil(service + " " + address, attempt, timeoutSeconds));
    }

    static int retryUntil(String what, Attempt attempt, long timeoutSeconds) {
        long start = System.nanoTime();
        long deadline = start + TimeUnit.SECONDS.toNanos(timeoutSeconds);
        String lastError = "no attempt made";
        int attempts = 0;
        while (true) {
            attempts++;
            try {
                String result = attempt.run(deadline);
                long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
                System.out.printf("%s: OK: %s (%d ms, %d attempt%s)%n",
                        what, result, ms, attempts, attempts == 1 ? "" : "s");
                return 0;
            } catch (Exception e) {
                lastError = describe(e);
            }
            if (System.nanoTime() + TimeUnit.SECONDS.toNanos(1) > deadline) {
                break;
            }
            sleep(1000);
        }
        System.out.printf("%s: FAILED after %d s and %d attempt%s: %s%n",
                what, TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - start), attempts,
                attempts == 1 ? "" : "s", lastError);
        return 1;
    }

    // ---------------------------------------------------------------- Kafka

    /** Produces one record to the probe topic and reads exactly that record back. */
    static String probeKafka(String bootstrap, String topic, long deadline) throws Exception {
        int remainingMs = (int) Math.max(6000, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()));
        String value = "fastdata-probe-" + UUID.randomUUID();

        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "fastdata-probe");
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "0");
        // The topic is auto-created by the first metadata request; the producer retries
        // while its leader is being elected. Bound every wait by the probe's deadline.
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, String.valueOf(remainingMs));
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, String.valueOf(remainingMs));
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        RecordMetadata md;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            md = producer.send(new ProducerRecord<>(topic, "probe", value))
                    .get(remainingMs, TimeUnit.MILLISECONDS);
        }

        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        c.put(ConsumerConfig.CLIENT_ID_CONFIG, "fastdata-probe");
        // No group: assign() + seek() reads the record without creating a consumer group.
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        c.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        c.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "5000");
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        TopicPartition tp = new TopicPartition(md.topic(), md.partition());
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
            consumer.assign(List.of(tp));
            consumer.seek(tp, md.offset());
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    if (value.equals(r.value())) {
                        return String.format("produced 1 record to %s-%d at offset %d and consumed it back",
                                tp.topic(), tp.partition(), r.offset());
                    }
                }
            }
        }
        throw new IllegalStateException("record produced to " + tp + " at offset " + md.offset()
                + " was not consumed back before the deadline");
    }

    // ------------------------------------------------------------ Cassandra

    static CqlSession cqlSession(InetSocketAddress target, String dataCenter) {
        DriverConfigLoader config = DriverConfigLoader.programmaticBuilder()
                .withDuration(DefaultDriverOption.CONNECTION_CONNECT_TIMEOUT, Duration.ofSeconds(5))
                .withDuration(DefaultDriverOption.CONNECTION_INIT_QUERY_TIMEOUT, Duration.ofSeconds(5))
                .withDuration(DefaultDriverOption.CONTROL_CONNECTION_TIMEOUT, Duration.ofSeconds(5))
                .withDuration(DefaultDriverOption.REQUEST_TIMEOUT, Duration.ofSeconds(10))
                // Don't try to reconnect in the background: the probe retries on its own.
                .withBoolean(DefaultDriverOption.RECONNECT_ON_INIT, false)
                // A probe needs neither the schema nor the token map; fetching them costs seconds.
                .withBoolean(DefaultDriverOption.METADATA_SCHEMA_ENABLED, false)
                .withBoolean(DefaultDriverOption.METADATA_TOKEN_MAP_ENABLED, false)
                // Closing waits for a 2 s Netty "quiet period" by default.
                .withInt(DefaultDriverOption.NETTY_IO_SHUTDOWN_QUIET_PERIOD, 0)
                .withInt(DefaultDriverOption.NETTY_ADMIN_SHUTDOWN_QUIET_PERIOD, 0)
                .build();
        return CqlSession.builder()
                .addContactPoint(target)
                .withLocalDatacenter(dataCenter)
                .withConfigLoader(config)
                .build();
    }

    /** Opens a CQL session and reads system.local. */
    static String probeCassandra(InetSocketAddress target, String dataCenter, long deadline) {
        try (CqlSession session = cqlSession(target, dataCenter)) {
            Row row = session.execute(
                    "SELECT release_version, cluster_name, data_center FROM system.local").one();
            if (row == null) {
                throw new IllegalStateException("system.local returned no row");
            }
            return String.format("CQL SELECT release_version FROM system.local -> %s (cluster '%s', dc '%s')",
                    row.getString("release_version"), row.getString("cluster_name"),
                    row.getString("data_center"));
        }
    }

    /** Runs each statement once and prints its rows as "column=value, ..." lines. */
    static int runCql(InetSocketAddress target, String dataCenter, List<String> statements) {
        if (statements.isEmpty()) {
            usage("cql needs at least one statement");
        }
        try (CqlSession session = cqlSession(target, dataCenter)) {
            for (String cql : statements) {
                ResultSet rs = session.execute(cql);
                int rows = 0;
                for (Row row : rs) {
                    StringBuilder line = new StringBuilder();
                    for (ColumnDefinition col : row.getColumnDefinitions()) {
                        if (line.length() > 0) {
                            line.append(", ");
                        }
                        line.append(col.getName().asCql(true)).append('=')
                                .append(row.getObject(col.getName()));
                    }
                    System.out.println(line);
                    rows++;
                }
                System.out.printf("-- %s: %d row%s%n", cql, rows, rows == 1 ? "" : "s");
            }
            return 0;
        } catch (Exception e) {
            System.out.println("cql: FAILED: " + describe(e));
            return 1;
        }
    }

    // ------------------------------------------------------------ ZooKeeper

    /** Sends the 'ruok' four-letter word, then opens a real session and stats '/'. */
    static String probeZooKeeper(String connect, InetSocketAddress target, long deadline) throws Exception {
        String ruok;
        try (Socket s = new Socket()) {
            s.connect(target, 3000);
            s.setSoTimeout(3000);
            OutputStream out = s.getOutputStream();
            out.write("ruok".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = s.getInputStream();
            ruok = new String(in.readAllBytes(), StandardCharsets.US_ASCII).trim();
        }
        if (!"imok".equals(ruok)) {
            throw new IllegalStateException("'ruok' answered '" + ruok + "' instead of 'imok'"
                    + " (is ruok in zookeeper.4lw.commands.whitelist?)");
        }
        CountDownLatch connected = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(connect, 10000, event -> {
            if (event.getState() == Watcher.Event.KeeperState.SyncConnected) {
                connected.countDown();
            }
        });
        try {
            long waitMs = Math.max(1000, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()));
            if (!connected.await(Math.min(waitMs, 10000), TimeUnit.MILLISECONDS)) {
                throw new IllegalStateException("'ruok' -> imok, but no session was established within 10 s");
            }
            Stat stat = zk.exists("/", false);
            if (stat == null) {
                throw new IllegalStateException("session established but '/' does not exist");
            }
            return String.format("ruok -> imok; session 0x%x established, '/' has %d children",
                    zk.getSessionId(), stat.getNumChildren());
        } finally {
            zk.close();
        }
    }

    // -------------------------------------------------------------- helpers

    static InetSocketAddress parseAddress(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        if (colon <= 0 || colon == hostPort.length() - 1) {
            usage("address must be HOST:PORT, got " + hostPort);
        }
        try {
            return new InetSocketAddress(hostPort.substring(0, colon),
                    Integer.parseInt(hostPort.substring(colon + 1)));
        } catch (NumberFormatException e) {
            usage("bad port in " + hostPort);
            return null;
        }
    }

    /** The innermost useful message of an exception chain, with the exception types. */
    static String describe(Throwable e) {
        StringBuilder sb = new StringBuilder();
        String previous = null;
        for (Throwable t = e; t != null && sb.length() < 600; t = t.getCause()) {
            String message = t.getMessage() == null ? "" : t.getMessage().replace('\n', ' ');
            // Wrappers (ExecutionException, CompletionException) repeat their cause's text.
            if (previous != null && !message.isEmpty() && previous.contains(message)) {
                continue;
            }
            if (sb.length() > 0) {
                sb.append(" <- caused by ");
            }
            sb.append(t.getClass().getSimpleName());
            if (!message.isEmpty()) {
                sb.append(": ").append(message);
            }
            previous = message;
        }
        return sb.toString();
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static void usage(String problem) {
        System.err.println("ServiceProbe: " + problem);
        System.err.println("usage: java -cp CLASSPATH ServiceProbe.java kafka|cassandra|zookeeper HOST:PORT"
                + " [--timeout SECONDS] [--topic NAME] [--dc DATACENTER]");
        System.err.println("       java -cp CLASSPATH ServiceProbe.java cql HOST:PORT [--dc DATACENTER] STATEMENT...");
        System.exit(2);
    }
}
