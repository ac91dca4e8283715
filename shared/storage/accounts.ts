import type { TableClient } from '@azure/data-tables';

import { formatCustomerAccount } from '../domain/accounts';
import type { AccountIndex, AccountNumbers } from '../domain/ports';
import { getOrUndefined, hasStatus } from './tables';
import type { WriteBatcher } from './write-batcher';

/**
 * Table `CustomerAccounts` — PartitionKey = the account without its last two digits, RowKey = customer
 * account → the customer key. Serves "find a customer by its real account" as a point read. A partition holds
 * the hundred accounts of one allocator block, which one process hands out together, so the entries of
 * concurrent creates share a transaction. Async customer accounts need no entry: they are the customer key.
 */
const blockOf = (customerAccount: string) => customerAccount.slice(0, -2);

export class TableAccountIndex implements AccountIndex {
  constructor(
    private readonly table: TableClient,
    private readonly writer: WriteBatcher,
  ) {}

  async put(customerAccount: string, customerKey: string): Promise<void> {
    await this.writer.upsert({ partitionKey: blockOf(customerAccount), rowKey: customerAccount, customerKey });
  }

  async customerKeyOf(customerAccount: string): Promise<string | undefined> {
    const entity = await getOrUndefined<{ customerKey: string }>(this.table, blockOf(customerAccount), customerAccount);
    return entity?.customerKey;
  }
}

/**
 * Table `Sequences` — PartitionKey 'sequence', RowKey = sequence name, `next` = first unreserved number.
 * Customer accounts are numbered by a hi/lo allocator: each process reserves a block with one ETag-guarded
 * update and hands numbers out from memory, so creates do not all contend on one entity. A crash loses the
 * rest of its block, which leaves gaps but never duplicates (HQ number sequences allow gaps).
 */
export class TableAccountNumbers implements AccountNumbers {
  private next = 0;
  private end = 0;
  private reserving?: Promise<void>;

  constructor(
    private readonly table: TableClient,
    private readonly blockSize = 100,
    private readonly sequence = 'customerAccount',
  ) {}

  async nextAccount(): Promise<string> {
    while (this.next >= this.end) {
      this.reserving ??= this.reserveBlock().finally(() => (this.reserving = undefined));
      await this.reserving;
    }
    return formatCustomerAccount(this.next++);
  }

  private async reserveBlock(): Promise<void> {
    for (;;) {
      const current = await getOrUndefined<{ next: number }>(this.table, 'sequence', this.sequence);
      const start = current?.next ?? 1;
      const entity = { partitionKey: 'sequence', rowKey: this.sequence, next: start + this.blockSize };
      try {
        if (current) await this.table.updateEntity(entity, 'Replace', { etag: current.etag });
        else await this.table.createEntity(entity);
        this.next = start;
        this.end = start + this.blockSize;
        return;
      } catch (error) {
        if (!hasStatus(error, 409, 412)) throw error; // another process reserved first: read again
      }
    }
  }
}
