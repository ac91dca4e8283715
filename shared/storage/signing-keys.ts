import { randomBytes } from 'node:crypto';

import type { TableClient } from '@azure/data-tables';

import type { SigningKeys } from '../domain/ports';
import { getOrUndefined, hasStatus } from './tables';

/**
 * Table `Keys` — PartitionKey `signing`, RowKey = what the key signs (`doorbell`) → { key } (32 random bytes,
 * base64). The first instance to need a key creates it; one that loses that race reads the winner's. Each
 * process reads a key once and keeps it. Whoever may read this table may sign: the same principals that may
 * write the customers' tables anyway.
 */
const PARTITION = 'signing';

export class TableSigningKeys implements SigningKeys {
  private readonly keys = new Map<string, Promise<Uint8Array>>();

  constructor(private readonly table: TableClient) {}

  doorbell(): Promise<Uint8Array> {
    return this.key('doorbell');
  }

  private key(purpose: string): Promise<Uint8Array> {
    let key = this.keys.get(purpose);
    if (!key) {
      key = this.readOrCreate(purpose).catch((error: unknown) => {
        this.keys.delete(purpose); // a storage hiccup is not remembered: the next call tries again
        throw error;
      });
      this.keys.set(purpose, key);
    }
    return key;
  }

  private async readOrCreate(purpose: string): Promise<Uint8Array> {
    for (;;) {
      const stored = await getOrUndefined<{ key: string }>(this.table, PARTITION, purpose);
      if (stored) return Buffer.from(stored.key, 'base64');
      try {
        const key = randomBytes(32);
        await this.table.createEntity({ partitionKey: PARTITION, rowKey: purpose, key: key.toString('base64') });
        return key;
      } catch (error) {
        if (!hasStatus(error, 409)) throw error; // 409: another instance created it first; read theirs
      }
    }
  }
}
