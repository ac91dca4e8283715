import { randomUUID } from 'node:crypto';

import { odata, type TableClient } from '@azure/data-tables';

import type { FeedInFlight, InFlightMarker, StoredMarker } from '../domain/ports';
import { hasStatus, shardName, shardOf } from './tables';
import type { WriteBatcher } from './write-batcher';

/**
 * Table `FeedInFlight` — PartitionKey `shard-NN` (hash of the customer key), RowKey `<customer key>|<round id>`
 * → { at, fromSeq, toSeq }. A processing round writes its marker before it stamps feed times and deletes it
 * after its feed entries are written (the feed's outbox). Readers never read past the oldest marker, so an
 * entry stamped at T but written a little later (a slow round, or one repaired after a crash) is never skipped
 * by a cursor that already moved past T. A marker left by a crash names the operations its round may have
 * applied; the sync-pending job writes their entries again and then removes it.
 */
/** Markers live only while a round runs (a few dozen at a time): two shards keep their transactions big. */
const SHARDS = 2;

export class TableFeedInFlight implements FeedInFlight {
  constructor(
    private readonly table: TableClient,
    private readonly writer: WriteBatcher,
  ) {}

  /** Marks a round about to apply (some of) the operations fromSeq..toSeq. */
  async begin(customerKey: string, at: Date, fromSeq: number, toSeq: number): Promise<InFlightMarker> {
    const marker = { partitionKey: shardOf(customerKey, SHARDS), rowKey: `${customerKey}|${randomUUID()}` };
    await this.writer.upsert({ ...marker, at: at.toISOString(), fromSeq, toSeq });
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
        const entities = this.table.listEntities<{ at: string; fromSeq: number; toSeq: number }>({
          queryOptions: { filter },
        });
        for await (const { partitionKey, rowKey, at, fromSeq, toSeq } of entities) {
          markers.push({
            partitionKey: partitionKey!,
            rowKey: rowKey!,
            customerKey: rowKey!.split('|')[0]!,
            at,
            fromSeq,
            toSeq,
          });
        }
        return markers;
      }),
    );
    return perShard.flat();
  }
}
