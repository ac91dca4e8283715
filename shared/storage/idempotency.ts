import type { TableClient } from '@azure/data-tables';

import type { IdempotencyKeys, IdempotentAnswer } from '../domain/ports';
import { encodeKey, getOrUndefined, hasStatus } from './tables';

/**
 * Table `IdempotencyKeys` — PartitionKey = channel, RowKey = the client's Idempotency-Key (key-encoded)
 * → the request's hash and the answer given. Written before the operation it stands for, so a retry after a
 * crash finds the same ids and completes the same operation instead of creating a second customer.
 */
export class TableIdempotencyKeys implements IdempotencyKeys {
  constructor(private readonly table: TableClient) {}

  /** Stores the answer unless the key is already used; returns the answer that holds for the key. */
  async claim(channel: string, key: string, answer: IdempotentAnswer): Promise<IdempotentAnswer> {
    try {
      await this.table.createEntity({ partitionKey: encodeKey(channel), rowKey: encodeKey(key), ...answer });
      return answer;
    } catch (error) {
      if (!hasStatus(error, 409)) throw error;
      const existing = await getOrUndefined<IdempotentAnswer>(this.table, encodeKey(channel), encodeKey(key));
      if (!existing) throw error;
      return {
        requestHash: existing.requestHash,
        operationId: existing.operationId,
        asyncCustomerAccount: existing.asyncCustomerAccount,
      };
    }
  }
}
