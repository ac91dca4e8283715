import { TableClient } from '@azure/data-tables';
import { ServiceBusClient } from '@azure/service-bus';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { person } from '../support';
import { eventually, type Stack, startStack } from './stack';

let stack: Stack;
let web: string;

beforeAll(async () => {
  stack = await startStack();
  web = stack.token('Channel', 'web');
});
afterAll(() => stack?.stop());

const reader = () => stack.token('Sync.Reader');

async function create(customer: unknown, headers?: Record<string, string>) {
  const response = await stack.call('POST', '/channels/web/customers', { token: web, body: customer, headers });
  expect(response.status).toBe(202);
  return (await response.json()) as { operationId: string; asyncCustomerAccount: string; status: string };
}

async function operation(operationId: string) {
  const response = await stack.call('GET', `/operations/${operationId}`, { token: reader() });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, any>;
}

const settled = (operationId: string, status = 'Synced', timeoutMs = 2000) =>
  eventually(
    async () => {
      const op = await operation(operationId);
      return op.status === status ? op : undefined;
    },
    timeoutMs,
    `${operationId} to be ${status}`,
  );

describe('a channel submits customers; HQ applies them in the background', () => {
  it('a create is accepted at once and reaches Synced within 2 seconds', async () => {
    const customer = person();
    const submitted = Date.now();
    const accepted = await create(customer);
    expect(accepted).toMatchObject({ status: 'Pending', asyncCustomerAccount: expect.stringMatching(/^ASYNC-/) });
    const op = await settled(accepted.operationId);
    expect(Date.now() - submitted).toBeLessThan(2000);
    expect(op.customerAccount).toMatch(/^C\d{9}$/);
    expect(op.history.map((h: { status: string }) => h.status)).toEqual(['Pending', 'Synced']);

    const byAccount = await stack.call('GET', `/customers/${op.customerAccount}`, { token: reader() });
    expect(byAccount.status).toBe(200);
    expect(await byAccount.json()).toMatchObject({ customer, asyncCustomerAccount: accepted.asyncCustomerAccount });
  });

  it.each([
    [{ customerGroup: 'VIP' }, 'CUSTOMER_GROUP_NOT_FOUND'],
    [{ currency: 'QQQ' }, 'UNKNOWN_CURRENCY'],
    [
      { address: { street: 'Vej 1', city: 'Aarhus', postalCode: '8000', countryRegion: 'QQ' } },
      'UNKNOWN_COUNTRY_REGION',
    ],
  ])('HQ refuses %j: the operation is Failed with %s', async (change, code) => {
    const accepted = await create(person(change as object));
    const op = await settled(accepted.operationId, 'Failed');
    expect(op.lastError).toMatchObject({ code, message: expect.any(String), at: expect.any(String) });
    expect(op.changeDescription).toMatch(/^Failed: /);
  });

  it('an email already used by another HQ customer fails the second create', async () => {
    const email = person().email;
    await settled((await create(person({ email }))).operationId);
    const second = await settled((await create(person({ email }))).operationId, 'Failed');
    expect(second.lastError.code).toBe('EMAIL_IN_USE');
  });

  it('an edit of a customer whose create failed waits, naming the create it waits on', async () => {
    const failed = await create(person({ customerGroup: 'Nope' }));
    await settled(failed.operationId, 'Failed');
    const edit = await stack.call('PATCH', `/channels/web/customers/${failed.asyncCustomerAccount}`, {
      token: web,
      body: { phone: '+45 11 22 33 44' },
    });
    expect(edit.status).toBe(202);
    const { operationId } = (await edit.json()) as { operationId: string };
    const waiting = await eventually(async () => {
      const op = await operation(operationId);
      return op.waitingOn ? op : undefined;
    });
    expect(waiting).toMatchObject({
      status: 'Pending',
      waitingOn: failed.operationId,
      lastError: { code: 'WAITING_FOR_OPERATION' },
    });
  });

  it('five rapid edits of one customer are applied in the order they were submitted', async () => {
    const accepted = await create(person());
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) {
      const response = await stack.call('PATCH', `/channels/web/customers/${accepted.asyncCustomerAccount}`, {
        token: web,
        body: { phone: `+45 ${i}`, attributes: { visits: i } },
      });
      expect(response.status).toBe(202);
      ids.push(((await response.json()) as { operationId: string }).operationId);
    }
    for (const id of ids) await settled(id);
    const customer = (await (
      await stack.call('GET', `/customers/${accepted.asyncCustomerAccount}`, { token: reader() })
    ).json()) as any;
    expect(customer).toMatchObject({ version: 6, customer: { phone: '+45 5', attributes: { visits: 5 } } });
    const last = await operation(ids[4]!);
    expect(last.attributes).toContainEqual({ name: 'phone', oldValue: '+45 4', newValue: '+45 5' });
  });

  it('an edit by the real customer account works once the create is applied', async () => {
    const accepted = await create(person());
    const { customerAccount } = await settled(accepted.operationId);
    const response = await stack.call('PATCH', `/channels/pos-042/customers/${customerAccount}`, {
      token: stack.token('Channel', 'pos-042'),
      body: { address: { city: 'Odense' } },
    });
    expect(response.status).toBe(202);
    const edit = await settled(((await response.json()) as { operationId: string }).operationId);
    expect(edit).toMatchObject({ channel: 'pos-042', customerAccount });
  });

  it('an unknown account is 404 and writes nothing', async () => {
    const response = await stack.call('PATCH', '/channels/web/customers/ASYNC-0000000000', {
      token: web,
      body: { phone: '1' },
    });
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
  });

  it('a repeated Idempotency-Key with the same body returns the first answer', async () => {
    const customer = person();
    const headers = { 'Idempotency-Key': `k-${Date.now()}` };
    const first = await create(customer, headers);
    const again = await create(customer, headers);
    expect(again).toEqual(first);
    const other = await stack.call('POST', '/channels/web/customers', { token: web, body: person(), headers });
    expect(other.status).toBe(422);
    expect(((await other.json()) as { code: string }).code).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  it('an edit repeated with its Idempotency-Key returns the first answer and creates nothing new', async () => {
    const { asyncCustomerAccount } = await create(person());
    const headers = { 'Idempotency-Key': `e-${Date.now()}` };
    const edit = (body: unknown) =>
      stack.call('PATCH', `/channels/web/customers/${asyncCustomerAccount}`, { token: web, body, headers });
    const first = await edit({ phone: '+4500000001' });
    const again = await edit({ phone: '+4500000001' });
    expect(first.status).toBe(202);
    expect(await again.json()).toEqual(await first.json());
    expect((await edit({ phone: '+4500000002' })).status).toBe(422);
  });

  it('the channel feed carries the async → real account mapping, and the cursor moves on', async () => {
    const accepted = await create(person());
    const { customerAccount } = await settled(accepted.operationId);
    const found = await eventually(async () => {
      let cursor: string | undefined;
      for (;;) {
        const page = (await (
          await stack.call('GET', `/channels/web/customer-updates${cursor ? `?cursor=${cursor}` : ''}`, { token: web })
        ).json()) as { items: { asyncCustomerAccount?: string; customerAccount: string }[]; cursor: string };
        const item = page.items.find((i) => i.asyncCustomerAccount === accepted.asyncCustomerAccount);
        if (item) return { item, cursor: page.cursor };
        if (page.items.length === 0) return undefined;
        cursor = page.cursor;
      }
    }, 4000);
    expect(found.item.customerAccount).toBe(customerAccount);
    const next = await stack.call('GET', `/channels/web/customer-updates?cursor=${found.cursor}`, { token: web });
    const nextItems = ((await next.json()) as { items: { asyncCustomerAccount?: string }[] }).items;
    expect(nextItems.some((i) => i.asyncCustomerAccount === accepted.asyncCustomerAccount)).toBe(false);
    const bad = await stack.call('GET', '/channels/web/customer-updates?cursor=garbage', { token: web });
    expect(bad.status).toBe(400);
  });
});

describe('an operator deletes a customer', () => {
  const operator = () => stack.token('Sync.Operator');
  const remove = (account: string, headers?: Record<string, string>) =>
    stack.call('DELETE', `/customers/${account}`, { token: operator(), headers });

  /** Every feed item of a customer so far, oldest first (the feed read from its start). */
  async function feedOf(asyncCustomerAccount: string) {
    const items: { customerAccount: string; customer: Record<string, unknown>; deleted?: boolean }[] = [];
    for (let cursor: string | undefined; ;) {
      const response = await stack.call('GET', `/channels/web/customer-updates${cursor ? `?cursor=${cursor}` : ''}`, {
        token: web,
      });
      const page = (await response.json()) as { items: (typeof items)[number][]; cursor: string };
      items.push(
        ...page.items.filter(
          (i) => (i as { asyncCustomerAccount?: string }).asyncCustomerAccount === asyncCustomerAccount,
        ),
      );
      if (page.items.length === 0) return items;
      cursor = page.cursor;
    }
  }

  it('DELETE → 202; once applied GET is 404, the feed says deleted, a later edit fails with CUSTOMER_DELETED', async () => {
    const customer = person();
    const created = await create(customer);
    const { customerAccount } = await settled(created.operationId);

    const response = await remove(customerAccount);
    expect(response.status).toBe(202);
    const accepted = (await response.json()) as { operationId: string; status: string };
    expect(accepted).toEqual({ operationId: expect.any(String), status: 'Pending' });
    expect(response.headers.get('location')).toBe(`/api/operations/${accepted.operationId}`);
    const deletion = await settled(accepted.operationId);
    expect(deletion).toMatchObject({ type: 'Delete', channel: 'hq', customerAccount });
    expect(deletion.changeDescription).toMatch(/^Deleted customer /);
    expect(deletion.attributes).toContainEqual({ name: 'email', oldValue: customer.email, newValue: null });

    for (const account of [customerAccount, created.asyncCustomerAccount]) {
      const gone = await stack.call('GET', `/customers/${account}`, { token: reader() });
      expect(gone.status).toBe(404);
      expect(await gone.json()).toMatchObject({ code: 'NOT_FOUND', detail: expect.stringMatching(/deleted/) });
    }
    const again = await remove(customerAccount);
    expect(again.status).toBe(404);
    expect(again.headers.get('content-type')).toBe('application/problem+json');

    const items = await eventually(async () => {
      const found = await feedOf(created.asyncCustomerAccount);
      return found.some((i) => i.deleted) ? found : undefined;
    }, 4000);
    expect(items.map((i) => i.deleted ?? false)).toEqual([false, true]);
    expect(items[1]).toMatchObject({ customerAccount, customer });

    const edit = await stack.call('PATCH', `/channels/web/customers/${customerAccount}`, {
      token: web,
      body: { phone: '+4511111111' },
    });
    expect(edit.status).toBe(202);
    const failed = await settled(((await edit.json()) as { operationId: string }).operationId, 'Failed');
    expect(failed.lastError).toMatchObject({
      code: 'CUSTOMER_DELETED',
      message: `Customer ${customerAccount} was deleted in HQ.`,
    });

    const listed = await stack.call('GET', `/operations?type=Delete&customerAccount=${customerAccount}`, {
      token: reader(),
    });
    expect(((await listed.json()) as { items: { operationId: string }[] }).items.map((i) => i.operationId)).toEqual([
      accepted.operationId,
    ]);
    const byType = await stack.call('GET', '/operations?type=Delete', {
      token: reader(),
      headers: { Accept: 'text/csv' },
    });
    expect(await byType.text()).toContain(`${accepted.operationId},hq,Delete,Synced`);
  });

  it('an unknown account is 404 and a Channel token is refused', async () => {
    expect((await remove('C999999998')).status).toBe(404);
    const { asyncCustomerAccount } = await create(person());
    const refused = await stack.call('DELETE', `/customers/${asyncCustomerAccount}`, { token: web });
    expect(refused.status).toBe(403);
  });

  it('a DELETE repeated with its Idempotency-Key gets the first answer', async () => {
    const { asyncCustomerAccount } = await create(person());
    const headers = { 'Idempotency-Key': `d-${Date.now()}` };
    const first = await remove(asyncCustomerAccount, headers);
    const second = await remove(asyncCustomerAccount, headers);
    expect(first.status).toBe(202);
    expect(await second.json()).toEqual(await first.json());
  });
});

describe('bad input is refused with problem+json and writes nothing', () => {
  const countCustomerEntities = async () => {
    const { STORAGE_CONNECTION_STRING, TABLE_PREFIX } = stack.settings;
    const customers = TableClient.fromConnectionString(STORAGE_CONNECTION_STRING!, `${TABLE_PREFIX}Customers`, {
      allowInsecureConnection: true,
    });
    let n = 0;
    for await (const _ of customers.listEntities()) n++;
    return n;
  };

  it.each([
    [
      'missing and invalid fields (all named)',
      { customerType: 'Person', email: 'x', currency: 'DK' },
      400,
      ['customerGroup', 'email', 'currency', 'firstName'],
    ],
    ['an unknown field', { ...person(), shoeSize: 44 }, 400, ['shoeSize']],
    ['malformed JSON', '{"customerType": ', 400, []],
    ['a body over 256 KiB', { ...person(), firstName: 'x'.repeat(300 * 1024) }, 413, []],
  ])('%s → %i', async (_, body, status, fields) => {
    const before = await countCustomerEntities();
    const response = await stack.call('POST', '/channels/web/customers', { token: web, body });
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    const problem = (await response.json()) as {
      status: number;
      code: string;
      detail: string;
      errors?: Record<string, string[]>;
    };
    expect(problem.status).toBe(status);
    expect(problem.detail).toBeTruthy();
    for (const field of fields) expect(Object.keys(problem.errors ?? {})).toContain(field);
    expect(JSON.stringify(problem)).not.toMatch(/at .*\.js:\d+/);
    expect(await countCustomerEntities()).toBe(before);
  });

  it('a wrong content type → 415', async () => {
    const response = await stack.call('POST', '/channels/web/customers', {
      token: web,
      body: JSON.stringify(person()),
      headers: { 'Content-Type': 'text/plain' },
    });
    expect(response.status).toBe(415);
  });
});

describe('authentication and roles', () => {
  it.each([
    ['no token', 'POST', '/channels/web/customers', undefined, 401],
    ['a garbage token', 'GET', '/jobs', 'not.a.token', 401],
    ['a reader submitting for a channel', 'POST', '/channels/web/customers', 'Sync.Reader', 403],
    ['a channel token for another channel', 'POST', '/channels/pos-1/customers', 'Channel:web', 403],
    ['a channel reading another channel feed', 'GET', '/channels/pos-1/customer-updates', 'Channel:web', 403],
    ['a channel reading an HQ customer', 'GET', '/customers/C000000001', 'Channel:web', 403],
    ['a channel listing jobs', 'GET', '/jobs', 'Channel:web', 403],
    ['a reader running a job', 'POST', '/jobs/sync-pending-operations/run', 'Sync.Reader', 403],
  ])('%s → %i', async (_, method, path, who, status) => {
    let token: string | undefined = who;
    if (who?.startsWith('Channel:')) token = stack.token('Channel', who.slice(8));
    else if (who === 'Sync.Reader') token = reader();
    const response = await stack.call(method, path, { token, body: method === 'POST' ? person() : undefined });
    expect(response.status).toBe(status);
    expect(((await response.json()) as { code: string }).code).toBe(status === 401 ? 'UNAUTHENTICATED' : 'FORBIDDEN');
  });

  it('health needs no token', async () => {
    const response = await stack.call('GET', '/health');
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 'ok' });
  });
});

describe('jobs and the queue', () => {
  it('an operator runs the sync-pending job; the run is listed with counts', async () => {
    const run = await stack.call('POST', '/jobs/sync-pending-operations/run', { token: stack.token('Sync.Operator') });
    expect(run.status).toBe(200);
    const jobs = (await (await stack.call('GET', '/jobs', { token: reader() })).json()) as { items: any[] };
    expect(jobs.items[0]).toMatchObject({
      job: 'sync-pending-operations',
      counts: expect.objectContaining({ rerung: expect.any(Number) }),
    });
    const unknown = await stack.call('POST', '/jobs/no-such-job/run', { token: stack.token('Sync.Operator') });
    expect(unknown.status).toBe(404);
  });

  it('a message that is not a doorbell is dead-lettered at once with its reason, not retried', async () => {
    const client = new ServiceBusClient(stack.settings.SERVICEBUS_CONNECTION!);
    try {
      const queue = stack.settings.CUSTOMER_OPERATIONS_QUEUE!;
      const sender = client.createSender(queue);
      await sender.sendMessages([
        { body: { hello: 'world' }, messageId: 'junk-1' },
        { body: 'not json', messageId: 'junk-2' },
        { body: { customerKey: "x' or '1' eq '1" }, messageId: 'junk-3' },
      ]);
      const dead = await eventually(
        async () => {
          const response = await stack.call('GET', '/dead-letters', { token: reader() });
          const { items } = (await response.json()) as { items: { messageId: string; reason: string; body: string }[] };
          return items.length >= 3 ? items : undefined;
        },
        5000,
        'three dead letters',
      );
      expect(dead.map((d) => d.messageId).sort()).toEqual(['junk-1', 'junk-2', 'junk-3']);
      expect(dead.find((d) => d.messageId === 'junk-1')).toMatchObject({
        reason: expect.stringMatching(/^Not a customer doorbell: customerKey: /),
        body: '{"hello":"world"}',
      });
      expect(dead.find((d) => d.messageId === 'junk-2')?.body).toBe('not json');
      // Completed on its first delivery: nothing left in the queue to retry, nothing in the broker's DLQ.
      const receiver = client.createReceiver(queue);
      await eventually(async () => ((await receiver.peekMessages(10)).length === 0 ? true : undefined));
      const dlq = client.createReceiver(queue, { subQueueType: 'deadLetter' });
      expect(await dlq.peekMessages(10)).toEqual([]);
    } finally {
      await client.close();
    }
  });
});
