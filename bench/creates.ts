/**
 * Submits N creates over HTTP to a running stack (`npm start`) at a given concurrency and reports end-to-end
 * throughput and submit → Synced latency, taken from each operation's own timestamps (operationTimestamp and
 * appliedAt are written by the service, so polling does not distort them).
 * Usage: npx tsx bench/creates.ts [count=1000] [concurrency=32] [baseUrl=http://localhost:7071/api]
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

const [count = 1000, concurrency = 32] = process.argv.slice(2, 4).map(Number);
const baseUrl = process.argv[4] ?? 'http://localhost:7071/api';
const token = (...args: string[]) =>
  execFileSync('node', ['dist/local/token.js', ...args], { encoding: 'utf8' }).trim();
const channelToken = token('Channel', '--channel', 'bench');
const readerToken = token('Sync.Reader');
const run = randomBytes(3).toString('hex');

async function main() {
  const ids: string[] = [];
  let next = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const response = await fetch(`${baseUrl}/channels/bench/customers`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${channelToken}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({
            customerType: 'Person',
            firstName: 'Bench',
            lastName: `No${i}`,
            email: `bench.${run}.${i}@example.dk`,
            customerGroup: 'Retail',
            currency: 'DKK',
            address: { street: 'Vej 1', city: 'Aarhus', postalCode: '8000', countryRegion: 'DK' },
          }),
        });
        if (response.status !== 202) throw new Error(`submit ${response.status}: ${await response.text()}`);
        ids.push(((await response.json()) as { operationId: string }).operationId);
      }
    }),
  );
  const submitted = Date.now();
  const get = async (id: string) =>
    (await (
      await fetch(`${baseUrl}/operations/${id}`, { headers: { Authorization: `Bearer ${readerToken}` } })
    ).json()) as {
      status: string;
      operationTimestamp: string;
      appliedAt?: string;
    };
  // Wait with little load of our own: operations finish roughly in submission order, so watch the oldest
  // unfinished one, then read every operation once for its timestamps.
  for (let i = 0; i < ids.length;) {
    if ((await get(ids[i]!)).status === 'Synced') i++;
    else await new Promise((r) => setTimeout(r, 50));
    if (Date.now() - started > 120_000) throw new Error(`operations not Synced after 120 s`);
  }
  const latencies: number[] = [];
  let lastApplied = 0;
  for (let i = 0; i < ids.length; i += 32) {
    for (const op of await Promise.all(ids.slice(i, i + 32).map(get))) {
      if (op.status !== 'Synced' || !op.appliedAt) throw new Error(`unexpected ${JSON.stringify(op)}`);
      const applied = Date.parse(op.appliedAt);
      latencies.push(applied - Date.parse(op.operationTimestamp));
      lastApplied = Math.max(lastApplied, applied);
    }
  }
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
  console.log(
    JSON.stringify(
      {
        operations: count,
        concurrency,
        submitSeconds: (submitted - started) / 1000,
        endToEndSeconds: (lastApplied - started) / 1000,
        opsPerSecond: Math.round(count / ((lastApplied - started) / 1000)),
        latencyMs: { p50: pct(50), p95: pct(95), p99: pct(99), max: latencies.at(-1) },
      },
      null,
      2,
    ),
  );
}

void main();
