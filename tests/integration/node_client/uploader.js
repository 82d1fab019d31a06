// A careful writer on the DataStax Node.js driver (4.x): a client astrachaos did not write.
// Each record is a prepared INSERT, at most 8 in flight; "stored" is logged only once the write is
// acknowledged, "failed" with the error's name otherwise (no retry: the driver's default for a
// non-idempotent write).
//
// args: host port keyspace table records appLog
const cassandra = require('cassandra-driver');
const fs = require('fs');

const [host, port, keyspace, table, records, appLog] = process.argv.slice(2);
const out = fs.openSync(appLog, 'a');
const log = (entry) => fs.writeSync(out, JSON.stringify(entry) + '\n');

async function main() {
  const client = new cassandra.Client({
    contactPoints: [`${host}:${port}`],
    localDataCenter: 'datacenter1',
    protocolOptions: { port: Number(port) },
    socketOptions: { readTimeout: 10000 },
  });
  await client.connect();
  const insert = `INSERT INTO ${keyspace}.${table} (id, seq, body) VALUES (?, ?, ?)`;
  let acknowledged = 0;
  let failed = 0;
  let inFlight = [];
  for (let seq = 0; seq < Number(records); seq++) {
    const id = cassandra.types.Uuid.random().toString();
    inFlight.push(client.execute(insert, [id, seq, `payload-${seq}`], { prepare: true }).then(
      () => { acknowledged++; log({ level: 'info', msg: 'stored', id, seq }); },
      (error) => { failed++; log({ level: 'warn', msg: 'failed', id, seq, error: error.name }); },
    ));
    if (inFlight.length >= 8) {
      await Promise.all(inFlight);
      inFlight = [];
    }
  }
  await Promise.all(inFlight);
  const hosts = client.hosts.values().map((h) => h.address);
  log({ level: 'info', msg: 'uploader stopped', acknowledged, failed, hosts });
  await client.shutdown();
  console.log('done');
}

main().catch((error) => { console.error(error); process.exit(1); });
