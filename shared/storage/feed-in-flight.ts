import { randomUUID } from 'node:crypto';

import { odata, type TableClient } from '@azure/data-tables';

import { hasStatus, shardName, shardOf, SHARDS } from './tables';
import type { WriteBatcher } from './write-batcher';

/**
 * Table `FeedInFlight` — PartitionKey `shard-NN` (hash of the customer key), RowKey `<customer key>|<round id>`
 * → { at }. A processing round writes its marker before it stamps feed times and deletes it after its feed
 * entries are written. Readers never read past the oldest marker, so an entry stamped at T but written a little
 * later (a slow round, or one repaired after a crash) is never skipped by a cursor that already moved past T.
 * A marker left by a crash holds the feed back until the sync-pending job sees the customer's feed caught up.
 */
export interface InFlightMarker {
  partitionKey: string;
  rowKey: string;
}

export interface StoredMarker extends InFlightMarker {
  customerKey: string;
  at: string;
}

export class FeedInFlight {
  constructor(
    private readonly table: TableClient,
    private readonly writer: WriteBatcher,
  ) {}

  async begin(customerKey: string, at: Date): Promise<InFlightMarker> {
    const marker = { partitionKey: shardOf(customerKey), rowKey: `${customerKey}|${randomUUID()}` };
    await this.writer.upsert({ ...marker, at: at.toISOString() });
    return marker;
  }

  async end(marker: InFlightMarker): Promise<void> {
    try {
      await this.writer.delete(marker.partitionKey, marker.rowKey);
    } catch (error) {
      if (!hasStatus(error, 404)) throw error;
    }
  }

  /** The time of the oldest round still publishing, if any. */
  async oldest(): Promise<string | undefined> {
    return (await this.list()).map((m) => m.at).sort()[0];
  }

  async list(): Promise<StoredMarker[]> {
    const perShard = await Promise.all(
      Array.from({ length: SHARDS }, async (_, shard) => {
        const markers: StoredMarker[] = [];
        const filter = odata`PartitionKey eq ${shardName(shard)}`;
        for await (const e of this.table.listEntities<{ at: string }>({ queryOptions: { filter } })) {
          const rowKey = e.rowKey!;
          markers.push({ partitionKey: e.partitionKey!, rowKey, customerKey: rowKey.split('|')[0]!, at: e.at });
        }
        return markers;
      }),
    );
    return perShard.flat();
  }
}
