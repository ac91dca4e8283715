/**
 * `npx tsx bench/deep-page.ts [operations]`: the 50th page of a listing in a busy hour, alone. Starts Azurite in
 * memory, writes `operations` (default 22,000, what the full profile's live phases put in their hour) through the
 * index code into the current hour, spread over its last ten minutes, then reads pages 1–50 of 100 six times, for
 * every operation and for one channel, and prints the median time (in process, no HTTP) of the first and the 50th
 * page. Minutes, not the full profile's hour, to see what a change does to deep pages.
 */
import { startAzurite } from '../local/azurite';
import { accepted } from '../shared/domain/lifecycle';
import type { IndexPosition } from '../shared/domain/ports';
import { openStore } from '../shared/storage';
import { pool } from './pipeline';

const CHANNELS = ['web', 'pos-001', 'pos-002', 'pos-003'];

async function main(): Promise<void> {
  const azurite = await startAzurite({ maxHeapMb: 8192 });
  try {
    const store = await openStore(azurite.connectionString, 'deep');
    const count = Number(process.argv[2] ?? 22_000);
    const hourStart = Math.floor(Date.now() / 3_600_000) * 3_600_000;
    const span = Math.max(60_000, Math.min(Date.now() - hourStart - 1000, 600_000));
    const start = Date.now() - span;
    await pool(count, 48, async (i) => {
      const at = new Date(start + Math.floor((i / count) * span)).toISOString();
      const customerKey = `ASYNC-D${String(i).padStart(9, '0')}`;
      const changes = { email: `d${i}@example.dk`, firstName: 'Deep', lastName: `No${i}`, customerGroup: 'Retail' };
      const channel = CHANNELS[i % CHANNELS.length]!;
      const submission = { customerKey, seq: 1, type: 'Create' as const, channel, changes, requestId: `r${i}` };
      await store.operationIndex.put(accepted({ ...submission, asyncCustomerAccount: customerKey }, at));
    });
    console.log(`${count} operations in the current hour, over its last ${span / 1000} s`);
    const window = { failed: false, fields: [], from: new Date(hourStart).toISOString(), to: new Date().toISOString() };
    const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!.toFixed(0);
    for (const filter of [{}, { channel: 'web' }]) {
      const first: number[] = [];
      const fiftieth: number[] = [];
      for (let round = 0; round < 6; round++) {
        let after: IndexPosition | undefined;
        for (let page = 1; page <= 50; page++) {
          const started = performance.now();
          const found = await store.operationIndex.page({ ...window, ...filter }, 100, after);
          const ms = performance.now() - started;
          if (page === 1) first.push(ms);
          if (page === 50) fiftieth.push(ms);
          after = found?.next;
          if (!after) throw new Error(`only ${page} pages`);
        }
      }
      console.log(
        `${JSON.stringify(filter)}: first page ${median(first)} ms, 50th page ${median(fiftieth)} ms (medians)`,
      );
    }
  } finally {
    await azurite.close();
  }
}

void main();
