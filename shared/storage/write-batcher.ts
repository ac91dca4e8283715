import type { TableClient, TableEntity } from '@azure/data-tables';

import { type Action, submitTransaction } from './transaction';

/**
 * Group commit for small entities that many requests write to the same partition at once (index entries,
 * pending marks, feed entries, markers). Each partition has at most one transaction in flight; writes that
 * arrive meanwhile queue up and go together in the next one. Alone, a write goes at once as a plain request,
 * so light load pays no extra latency, while heavy load turns N requests into about N/100.
 *
 * Every caller still gets its own answer: when a transaction fails (one action's 404, 409 or 412 fails them
 * all), its actions are retried one by one, each with its own condition. Only actions that are safe to repeat
 * belong here — upserts, creates whose 409 the caller handles, deletes whose 404 it ignores, conditional
 * deletes whose 404 and 412 it handles — since a transaction whose answer was lost may have landed before
 * that retry.
 */
export class WriteBatcher {
  private readonly queues = new Map<string, Queued[]>();

  constructor(private readonly table: TableClient) {}

  /** Inserts or replaces; resolves with the entity's new ETag. */
  upsert(entity: TableEntity): Promise<string | undefined> {
    return this.enqueue(['upsert', entity, 'Replace'], entity);
  }

  /** Inserts; rejects with 409 if the entity exists. */
  create(entity: TableEntity): Promise<string | undefined> {
    return this.enqueue(['create', entity], entity);
  }

  /** Deletes whatever version is there; rejects with 404 if it is gone. */
  delete(partitionKey: string, rowKey: string): Promise<void> {
    return this.enqueue(['delete', { partitionKey, rowKey }], { partitionKey, rowKey }).then(() => undefined);
  }

  /**
   * Deletes only the version with this ETag: rejects with 412 if the entity changed since, 404 if it is gone.
   * In a shared transaction a 412 fails the whole; the one-by-one retry then gives it to this caller only.
   */
  deleteIf(partitionKey: string, rowKey: string, etag: string): Promise<void> {
    return this.enqueue(['delete', { partitionKey, rowKey }, { etag }], { partitionKey, rowKey }).then(() => undefined);
  }

  private enqueue(action: Action, key: TableEntity): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      const queue = this.queues.get(key.partitionKey);
      const item: Queued = { action, rowKey: key.rowKey, size: approximateSize(key), resolve, reject };
      if (queue) {
        queue.push(item);
        return;
      }
      this.queues.set(key.partitionKey, [item]);
      void this.drain(key.partitionKey);
    });
  }

  /** Sends the partition's queue in transactions, one at a time, until it is empty. */
  private async drain(partitionKey: string): Promise<void> {
    const queue = this.queues.get(partitionKey)!;
    while (queue.length > 0) await this.send(takeBatch(queue));
    this.queues.delete(partitionKey);
  }

  private async send(batch: Queued[]): Promise<void> {
    if (batch.length > 1) {
      try {
        const { subResponses } = await submitTransaction(
          this.table,
          batch.map((q) => q.action),
        );
        batch.forEach((q, i) => q.resolve(subResponses[i]?.etag));
        return;
      } catch {
        // Fall through: one by one, so each caller learns its own outcome.
      }
    }
    await Promise.all(batch.map((q) => this.sendOne(q)));
  }

  private async sendOne(q: Queued): Promise<void> {
    try {
      const { action } = q;
      const [kind, entity] = action;
      if (kind === 'delete') {
        await this.table.deleteEntity(entity.partitionKey, entity.rowKey, action[2]);
        q.resolve(undefined);
      } else if (kind === 'create') {
        q.resolve((await this.table.createEntity(entity)).etag);
      } else {
        q.resolve((await this.table.upsertEntity(entity, 'Replace')).etag);
      }
    } catch (error) {
      q.reject(error);
    }
  }
}

interface Queued {
  action: Action;
  rowKey: string;
  size: number;
  resolve(etag: string | undefined): void;
  reject(error: unknown): void;
}

/** A transaction holds at most 100 actions and 4 MiB, and may touch an entity only once. */
const MAX_ACTIONS = 100;
const MAX_BYTES = 3 * 1024 * 1024;

function takeBatch(queue: Queued[]): Queued[] {
  const batch: Queued[] = [];
  const rows = new Set<string>();
  let bytes = 0;
  for (let i = 0; i < queue.length && batch.length < MAX_ACTIONS;) {
    const q = queue[i]!;
    if (rows.has(q.rowKey) || (batch.length > 0 && bytes + q.size > MAX_BYTES)) {
      i++; // a second write of the same entity waits for the next transaction, keeping the order per entity
      continue;
    }
    rows.add(q.rowKey);
    bytes += q.size;
    batch.push(q);
    queue.splice(i, 1);
  }
  return batch;
}

/** Upper bound of an entity's size on the wire (JSON, UTF-16 worst case is covered by the 1 MiB margin). */
const approximateSize = (entity: TableEntity) => JSON.stringify(entity).length + 200;
