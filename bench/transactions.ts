/**
 * `npx tsx bench/transactions.ts [count]`: host CPU per entity-group transaction, the SDK's
 * TableClient.submitTransaction against shared/storage/transaction.ts, side by side in one process against
 * Azurite (its own process, so only the client's CPU is counted: process.cpuUsage()). Each round sends `count`
 * (default 5,000) two-entity and `count` ten-entity transactions with each, in alternating slices of 250 at
 * concurrency 8, so that drift (JIT warm-up, GC, a neighbour on the machine) falls on both alike.
 */
import { TableClient, type TableEntity, type TransactionAction } from '@azure/data-tables';

import { startAzurite } from '../local/azurite';
import { packJson } from '../shared/storage/tables';
import { type Action, submitTransaction } from '../shared/storage/transaction';

const count = Number(process.argv[2] ?? 5_000);
const SLICE = 250;
const CONCURRENCY = 8;
const ROUNDS = 2;

type Send = (table: TableClient, actions: Action[]) => Promise<unknown>;
const senders: Record<string, Send> = {
  sdk: (table, actions) => table.submitTransaction(actions as TransactionAction[]),
  ours: (table, actions) => submitTransaction(table, actions),
};

/** Entities shaped like the service's: a customer record with chunked JSON, operations, small index marks. */
const record = (partitionKey: string, i: number): TableEntity => ({
  partitionKey,
  rowKey: 'customer',
  nextSeq: i + 2,
  appliedThrough: i,
  status: 'Synced',
  updatedAt: new Date().toISOString(),
  ...packJson('customer', {
    firstName: 'Ånne',
    lastName: `Berg${i}`,
    attributes: { tier: 'Gold', note: 'x'.repeat(400) },
  }),
});
const operation = (partitionKey: string, seq: number): TableEntity => ({
  partitionKey,
  rowKey: `op-${String(seq).padStart(10, '0')}`,
  seq,
  kind: 'Edit',
  status: 'Accepted',
  channel: 'webshop',
  submittedAt: new Date().toISOString(),
  attempts: 0,
  ...packJson('changes', { email: { from: 'a@example.dk', to: 'b@example.dk' } }),
});

/** A transaction of `size` entities in a partition of its own (upserts, so a repeat finds nothing to conflict). */
function actions(run: string, n: number, size: number): Action[] {
  const pk = `${run}-${n % 500}`;
  const out: Action[] = [['upsert', record(pk, n), 'Replace']];
  for (let i = 1; i < size; i++) out.push(['upsert', operation(pk, i), 'Replace']);
  return out;
}

async function slice(table: TableClient, send: Send, run: string, from: number, size: number): Promise<number> {
  const before = process.cpuUsage();
  let next = from;
  const worker = async () => {
    while (next < from + SLICE) await send(table, actions(run, next++, size));
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const used = process.cpuUsage(before);
  return used.user + used.system;
}

async function main() {
  const azurite = await startAzurite();
  try {
    const table = TableClient.fromConnectionString(azurite.connectionString, 'benchtx', {
      allowInsecureConnection: true,
      retryOptions: { maxRetries: 3, retryDelayInMs: 250, maxRetryDelayInMs: 2000 },
    });
    await table.createTable();
    for (const name of Object.keys(senders)) await slice(table, senders[name]!, `warm-${name}`, 0, 10);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const size of [2, 10]) {
        const cpu: Record<string, number> = { sdk: 0, ours: 0 };
        for (let from = 0; from < count; from += SLICE) {
          for (const name of from % (2 * SLICE) === 0 ? ['sdk', 'ours'] : ['ours', 'sdk']) {
            cpu[name]! += await slice(table, senders[name]!, `${name}-${size}`, from, size);
          }
        }
        const per = (name: string) => cpu[name]! / count / 1000;
        console.log(
          `round ${round}, ${count} × ${String(size).padStart(2)}-entity transactions: ` +
            `SDK ${per('sdk').toFixed(3)} ms CPU each, ours ${per('ours').toFixed(3)} ms ` +
            `(${((1 - per('ours') / per('sdk')) * 100).toFixed(0)}% less)`,
        );
      }
    }
  } finally {
    await azurite.close();
  }
}

void main();
