import type { TableClient } from '@azure/data-tables';

import type { EmailClaim, EmailClaims } from '../domain/ports';
import { encodeKey, getOrUndefined, hasStatus } from './tables';

/**
 * Table `EmailClaims` — PartitionKey = normalized email (key-encoded), RowKey '' → { customerKey, seq }.
 * Enforces "an email belongs to at most one HQ customer" across partitions, which no transaction can span.
 * A claim is taken before the customer commits the email and released after it stops using it; a claim left
 * behind by a crash or a failed operation is recognised as stale (see isStaleClaim in shared/operations/process.ts)
 * and taken over.
 */
export class TableEmailClaims implements EmailClaims {
  constructor(private readonly table: TableClient) {}

  async get(email: string): Promise<EmailClaim | undefined> {
    const entity = await getOrUndefined<{ customerKey: string; seq: number }>(this.table, encodeKey(email), '');
    return entity && { customerKey: entity.customerKey, seq: entity.seq, etag: entity.etag };
  }

  /** Claims an unclaimed email, or takes over the claim read as `previous`. False if someone else won. */
  async claim(email: string, customerKey: string, seq: number, previous?: EmailClaim): Promise<boolean> {
    const entity = { partitionKey: encodeKey(email), rowKey: '', customerKey, seq };
    try {
      if (previous) await this.table.updateEntity(entity, 'Replace', { etag: previous.etag });
      else await this.table.createEntity(entity);
      return true;
    } catch (error) {
      if (hasStatus(error, 409, 412)) return false;
      throw error;
    }
  }

  async release(email: string, claim: EmailClaim): Promise<void> {
    try {
      await this.table.deleteEntity(encodeKey(email), '', { etag: claim.etag });
    } catch (error) {
      if (!hasStatus(error, 404, 412)) throw error; // gone or re-claimed meanwhile: nothing to release
    }
  }
}
