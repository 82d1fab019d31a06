// The seed's uploader pattern, in Java on the DataStax Java driver 4.x: a client astrachaos did not write.
// Each batch of statements goes out at once and is logged as "stored" when submitted (not when
// acknowledged); a failed batch is retried whole after a fixed 1 s, forever; one warning only
// (a shared flag); retries still pending at shutdown are dropped.
//
// args: host port keyspace table records batchSize appLog lingerSeconds [burst];
// -Dconsistency=QUORUM, -Dcompression=lz4 (advanced.protocol.compression), -Dprotocol=V4 (else negotiated)
import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.config.DefaultDriverOption;
import com.datastax.oss.driver.api.core.config.DriverConfigLoader;
import com.datastax.oss.driver.api.core.config.ProgrammaticDriverConfigLoaderBuilder;
import com.datastax.oss.driver.api.core.cql.PreparedStatement;
import java.io.FileWriter;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

public class Uploader {
  static PrintWriter log;
  static final AtomicBoolean warned = new AtomicBoolean(false);
  static final ScheduledExecutorService retries = Executors.newSingleThreadScheduledExecutor();
  static final AtomicInteger acknowledged = new AtomicInteger();
  static final AtomicInteger failedAttempts = new AtomicInteger();

  static synchronized void logLine(String json) {
    log.println(json);
    log.flush();
  }

  public static void main(String[] args) throws Exception {
    String host = args[0];
    int port = Integer.parseInt(args[1]);
    String table = args[2] + "." + args[3];
    int records = Integer.parseInt(args[4]);
    int batchSize = Integer.parseInt(args[5]);
    log = new PrintWriter(new FileWriter(args[6], true));
    int linger = Integer.parseInt(args[7]);
    boolean burst = args.length > 8 && args[8].equals("burst");
    ProgrammaticDriverConfigLoaderBuilder options = DriverConfigLoader.programmaticBuilder()
        .withDuration(DefaultDriverOption.REQUEST_TIMEOUT, Duration.ofSeconds(10))
        .withString(DefaultDriverOption.REQUEST_CONSISTENCY, System.getProperty("consistency", "LOCAL_ONE"))
        .withString(DefaultDriverOption.REQUEST_THROTTLER_CLASS, "ConcurrencyLimitingRequestThrottler")
        .withInt(DefaultDriverOption.REQUEST_THROTTLER_MAX_CONCURRENT_REQUESTS, 8)
        .withInt(DefaultDriverOption.REQUEST_THROTTLER_MAX_QUEUE_SIZE, burst ? 16 : 10000)
        .withString(DefaultDriverOption.PROTOCOL_COMPRESSION, System.getProperty("compression", "none"));
    if (System.getProperty("protocol") != null) {
      options = options.withString(DefaultDriverOption.PROTOCOL_VERSION, System.getProperty("protocol"));
    }
    DriverConfigLoader config = options.build();
    try (CqlSession session = CqlSession.builder()
        .addContactPoint(new InetSocketAddress(host, port))
        .withLocalDatacenter("datacenter1")
        .withConfigLoader(config)
        .build()) {
      PreparedStatement insert = session.prepare(
          "INSERT INTO " + table + " (id, seq, body) VALUES (?, ?, ?)");
      for (int start = 0; start < records; start += batchSize) {
        List<Object[]> batch = new ArrayList<>();
        for (int i = start; i < Math.min(records, start + batchSize); i++) {
          batch.add(new Object[] {UUID.randomUUID(), i, "payload-" + i});
        }
        upload(session, insert, batch, 1);
        for (Object[] r : batch) {  // the seed's bug: logged when submitted, not when acknowledged
          logLine("{\"level\":\"info\",\"msg\":\"stored\",\"id\":\"" + r[0] + "\",\"seq\":" + r[1] + "}");
        }
        if (!burst) Thread.sleep(20);
      }
      Thread.sleep(linger * 1000L);
      int dropped = retries.shutdownNow().size();
      logLine("{\"level\":\"info\",\"msg\":\"uploader stopped\",\"pending_retries_dropped\":" + dropped
          + ",\"acknowledged\":" + acknowledged.get() + ",\"failed_attempts\":" + failedAttempts.get() + "}");
    }
    log.close();
    System.out.println("done");
  }

  static void upload(CqlSession session, PreparedStatement insert, List<Object[]> batch, int attempt) {
    List<CompletableFuture<?>> futures = new ArrayList<>();
    for (Object[] r : batch) {
      futures.add(session.executeAsync(insert.bind(r[0], r[1], r[2])).toCompletableFuture());
    }
    CompletableFuture.allOf(futures.toArray(new CompletableFuture[0])).whenComplete((ok, error) -> {
      if (error == null) {
        acknowledged.addAndGet(batch.size());
        return;
      }
      failedAttempts.incrementAndGet();
      if (warned.compareAndSet(false, true)) {
        logLine("{\"level\":\"warn\",\"msg\":\"upload failed, retrying\",\"error\":\""
            + error.getClass().getSimpleName() + "\"}");
      }
      try {
        retries.schedule(() -> upload(session, insert, batch, attempt + 1), 1, TimeUnit.SECONDS);
      } catch (java.util.concurrent.RejectedExecutionException stopped) {
        // shutting down: the retry is dropped, as in the seed
      }
    });
  }
}
