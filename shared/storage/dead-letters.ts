import { odata, type TableClient } from '@azure/data-tables';

import type { DeadLetter, DeadLetters } from '../domain/ports';
import { invertedTime } from './tables';

/**
 * Table `DeadLetters` — queue messages that are not doorbells, kept with the reason they were refused.
 * PartitionKey `dead`, RowKey = inverted receipt time + message id, so the newest list first. They are rare
 * (a doorbell is written by this service alone), so one partition holds them all.
 *
 * Why not the broker's dead-letter queue: a Node.js function settles its trigger message only through the
 * preview Service Bus SDK-binding extension; with the generally available model, throwing abandons the
 * message and the broker retries it up to its max delivery count. An invalid message cannot become valid by
 * retrying, so the processor records it here and completes it at once.
 */
const PARTITION = 'dead';
/** Keeps an entity well under Table Storage's 64 KiB per string property. */
const MAX_BODY = 16_000;

export class TableDeadLetters implements DeadLetters {
  constructor(private readonly table: TableClient) {}

  /** Records a refused message, its body cut at MAX_BODY characters (a redelivery, if completing it failed, is recorded again). */
  async add(entry: DeadLetter): Promise<void> {
    await this.table.upsertEntity(
      {
        partitionKey: PARTITION,
        rowKey: `${invertedTime(entry.receivedAt)}|${encodeURIComponent(entry.messageId).slice(0, 200)}`,
        ...entry,
        body: entry.body.slice(0, MAX_BODY),
      },
      'Replace',
    );
  }

  /** The newest `top` dead letters. */
  async latest(top: number): Promise<DeadLetter[]> {
    const items: DeadLetter[] = [];
    const pages = this.table
      .listEntities<DeadLetter>({ queryOptions: { filter: odata`PartitionKey eq ${PARTITION}` } })
      .byPage({ maxPageSize: top });
    for await (const page of pages) {
      for (const e of page) {
        items.push({ messageId: e.messageId, reason: e.reason, body: e.body, receivedAt: e.receivedAt });
        if (items.length === top) return items;
      }
    }
    return items;
  }

  /**
   * How many were received at or after `since`: one range query in the partition (RowKeys of newer letters are
   * smaller), reading only the keys of the letters it counts.
   */
  async countSince(since: string): Promise<number> {
    let count = 0;
    const filter = odata`PartitionKey eq ${PARTITION} and RowKey lt ${`${invertedTime(since)}|~`}`;
    for await (const _ of this.table.listEntities({ queryOptions: { filter, select: ['RowKey'] } })) count++;
    return count;
  }

  /** Deletes dead letters received before `before` (retention); returns how many. */
  async deleteBefore(before: string): Promise<number> {
    let deleted = 0;
    const filter = odata`PartitionKey eq ${PARTITION} and RowKey gt ${invertedTime(before)}`;
    for await (const e of this.table.listEntities({ queryOptions: { filter, select: ['RowKey'] } })) {
      await this.table.deleteEntity(PARTITION, e.rowKey!);
      deleted++;
    }
    return deleted;
  }
}
