import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { type Config, DynamicsWebApi, type RequestError, type RetrieveMultipleResponse } from 'dynamics-web-api';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type DevDataverse, type DevDataverseOptions, startDevDataverse } from '../../local/dataverse';

/** A client configured as the service configures it, against this server. */
const clientFor = (dataverse: DevDataverse, config: Config = {}) =>
  new DynamicsWebApi({
    serverUrl: dataverse.url,
    dataApi: { version: '9.2' },
    onTokenRefresh: async () => 'dev-token',
    propagateErrors: true,
    ...config,
  });

/** Starts a server of its own on a free port, with a client, and closes it afterwards: tests do not share rows. */
async function withDataverse(
  options: DevDataverseOptions,
  run: (api: DynamicsWebApi, dataverse: DevDataverse) => Promise<void>,
): Promise<void> {
  const dataverse = await startDevDataverse({ port: 0, ...options });
  try {
    await run(clientFor(dataverse), dataverse);
  } finally {
    await dataverse.close();
  }
}

/** The error a request fails with; fails the test if it succeeds. */
async function failure(request: Promise<unknown>): Promise<RequestError> {
  return request.then(
    (value) => {
      throw new Error(`expected the request to fail, it answered ${JSON.stringify(value)}`);
    },
    (error: unknown) => error as RequestError,
  );
}

const etag = (row: { '@odata.etag'?: string }) => row['@odata.etag']!;

describe('development Dataverse through dynamics-web-api', () => {
  it('creates a row under a client-chosen id, and a second create with that id is 412 0x80040237', async () => {
    await withDataverse({}, async (api, dataverse) => {
      const id = randomUUID();
      const created: unknown = await api.create({
        collection: 'accounts',
        data: { accountid: id, name: 'Contoso', accountnumber: 'C-1' },
      });
      expect(created).toBe(id);

      const duplicate = await failure(api.create({ collection: 'accounts', data: { accountid: id, name: 'Again' } }));
      expect(duplicate.status).toBe(412);
      expect(duplicate.code).toBe('0x80040237');
      expect(dataverse.row('accounts', id)?.name).toBe('Contoso');

      const generated = await api.create<Record<string, unknown>, Record<string, unknown>>({
        collection: 'accounts',
        data: { name: 'Fabrikam', creditonhold: false, revenue: 1200.5, description: null },
        returnRepresentation: true,
      });
      expect(generated.accountid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(generated).toMatchObject({ name: 'Fabrikam', creditonhold: false, revenue: 1200.5, description: null });
      expect(typeof generated.versionnumber).toBe('number');
      expect(generated['@odata.etag']).toBe(`W/"${String(generated.versionnumber)}"`);
      // dynamics-web-api turns Dataverse's second-precision UTC dates into Dates.
      expect(generated.createdon).toBeInstanceOf(Date);
      expect(generated.modifiedon).toEqual(generated.createdon);
    });
  });

  it('retrieves a row with $select, answers 304 to its current ETag and 404 0x80040217 to an unknown id', async () => {
    await withDataverse({}, async (api) => {
      const id = randomUUID();
      await api.create({ collection: 'contacts', data: { contactid: id, firstname: 'Ann', lastname: 'Berg' } });

      const row = await api.retrieve({ collection: 'contacts', key: id, select: ['lastname', 'telephone1'] });
      expect(row).toEqual({
        '@odata.context': expect.stringMatching(
          /\/api\/data\/v9\.2\/\$metadata#contacts\(lastname,telephone1\)\/\$entity$/,
        ),
        oDataContext: expect.any(String),
        '@odata.etag': expect.stringMatching(/^W\/"\d+"$/),
        lastname: 'Berg',
        telephone1: null,
        contactid: id,
      });

      const unchanged: unknown = await api.retrieve({ collection: 'contacts', key: id, ifnonematch: etag(row) });
      expect(unchanged).toBeUndefined();

      const missing = await failure(api.retrieve({ collection: 'contacts', key: randomUUID() }));
      expect(missing.status).toBe(404);
      expect(missing.code).toBe('0x80040217');
      expect(missing.message).toMatch(/^contact With Id = .* Does Not Exist$/);
    });
  });

  it('updates only when If-Match names the current version; a stale ETag is 412 0x80060882 and writes nothing', async () => {
    await withDataverse({}, async (api, dataverse) => {
      const id = randomUUID();
      const created = await api.create<object, Record<string, unknown>>({
        collection: 'contacts',
        data: { contactid: id, lastname: 'Berg', telephone1: '111' },
        returnRepresentation: true,
      });

      const updated = await api.update<object, Record<string, unknown>>({
        collection: 'contacts',
        key: id,
        data: { telephone1: '222', emailaddress1: null },
        ifmatch: etag(created),
        returnRepresentation: true,
        select: ['telephone1', 'emailaddress1'],
      });
      expect(updated).toMatchObject({ telephone1: '222', emailaddress1: null, contactid: id });
      expect(Number(updated.versionnumber ?? dataverse.row('contacts', id)?.versionnumber)).toBeGreaterThan(
        created.versionnumber as number,
      );

      const stale = await failure(
        api.update({ collection: 'contacts', key: id, data: { telephone1: '333' }, ifmatch: etag(created) }),
      );
      expect(stale.status).toBe(412);
      expect(stale.code).toBe('0x80060882');
      expect(dataverse.row('contacts', id)).toMatchObject({ telephone1: '222', emailaddress1: null, lastname: 'Berg' });

      // update() sends If-Match: * unless told otherwise, so it never creates.
      const missing = await failure(api.update({ collection: 'contacts', key: randomUUID(), data: { lastname: 'X' } }));
      expect(missing.status).toBe(404);
    });
  });

  it('upserts: PATCH creates a missing row, If-None-Match * refuses an existing one, If-Match * refuses a missing one', async () => {
    await withDataverse({}, async (api, dataverse) => {
      const id = randomUUID();
      const created = await api.upsert<object, Record<string, unknown>>({
        collection: 'accounts',
        key: id,
        data: { name: 'Northwind' },
        returnRepresentation: true,
      });
      expect(created).toMatchObject({ accountid: id, name: 'Northwind' });

      const refused = await failure(
        api.upsert({ collection: 'accounts', key: id, data: { name: 'Overwritten' }, ifnonematch: '*' }),
      );
      expect(refused.status).toBe(412);
      expect(refused.code).toBe('0x80040237');
      expect(dataverse.row('accounts', id)?.name).toBe('Northwind');

      await api.upsert({ collection: 'accounts', key: id, data: { name: 'Northwind Traders' } });
      expect(dataverse.row('accounts', id)?.name).toBe('Northwind Traders');

      const notThere = await failure(
        api.upsert({ collection: 'accounts', key: randomUUID(), data: { name: 'Ghost' }, ifmatch: '*' }),
      );
      expect(notThere.status).toBe(404);
      expect(dataverse.rows('accounts')).toHaveLength(1);
    });
  });

  it('deletes a row; a stale If-Match is 412 and a second delete is 404', async () => {
    await withDataverse({}, async (api, dataverse) => {
      const id = randomUUID();
      const created = await api.create<object, Record<string, unknown>>({
        collection: 'accounts',
        data: { accountid: id, name: 'Doomed' },
        returnRepresentation: true,
      });
      await api.update({ collection: 'accounts', key: id, data: { name: 'Doomed, renamed' } });

      const stale = await failure(api.deleteRecord({ collection: 'accounts', key: id, ifmatch: etag(created) }));
      expect(stale.status).toBe(412);
      expect(dataverse.row('accounts', id)).toBeDefined();

      expect(await api.deleteRecord({ collection: 'accounts', key: id })).toBe(true);
      expect(dataverse.row('accounts', id)).toBeUndefined();
      expect((await failure(api.deleteRecord({ collection: 'accounts', key: id }))).status).toBe(404);
    });
  });

  it('filters with eq, ne, null, and, or and parentheses, including a text with a quote, ignoring case', async () => {
    await withDataverse({}, async (api) => {
      const people = [
        { firstname: 'Ann', lastname: "O'Brien", emailaddress1: 'ann@example.dk' },
        { firstname: 'Bo', lastname: 'Berg', emailaddress1: null },
        { firstname: 'Bo', lastname: 'Holm', emailaddress1: 'bo@example.dk' },
        { firstname: 'Cy', lastname: 'Holm', emailaddress1: 'cy@example.dk' },
      ];
      for (const data of people) await api.create({ collection: 'contacts', data });
      const lastnames = async (filter: string) =>
        (await api.retrieveMultiple({ collection: 'contacts', select: ['lastname', 'firstname'], filter })).value
          .map((row: { firstname: string; lastname: string }) => `${row.firstname} ${row.lastname}`)
          .sort();

      expect(await lastnames("lastname eq 'O''Brien'")).toEqual(["Ann O'Brien"]);
      expect(await lastnames("lastname eq 'o''brien'")).toEqual(["Ann O'Brien"]);
      expect(await lastnames('emailaddress1 eq null')).toEqual(['Bo Berg']);
      // A comparison with null is unknown, so ne leaves out rows without an e-mail.
      expect(await lastnames("emailaddress1 ne 'bo@example.dk'")).toEqual(["Ann O'Brien", 'Cy Holm']);
      expect(await lastnames("(firstname eq 'Bo' or firstname eq 'Cy') and emailaddress1 ne null")).toEqual([
        'Bo Holm',
        'Cy Holm',
      ]);
      expect(await lastnames("firstname eq 'Ann' or lastname eq 'Holm' and firstname eq 'Cy'")).toEqual([
        "Ann O'Brien",
        'Cy Holm',
      ]);
      expect(await lastnames("not (lastname eq 'Holm') and startswith(lastname,'b')")).toEqual(['Bo Berg']);
      await api.create({ collection: 'contacts', data: { firstname: 'Dan', lastname: 'dan' } });
      expect(await lastnames('firstname eq lastname')).toEqual(['Dan dan']);
      expect(await lastnames('createdon le 2000-01-01T00:00:00Z')).toEqual([]);
      expect(await lastnames('createdon gt 2000-01-01T00:00:00+01:00')).toHaveLength(5);
    });
  });

  it('answers an unsupported or malformed $filter with 400 and a message saying what, and an unknown table with 404', async () => {
    await withDataverse({}, async (api) => {
      for (const [filter, message] of [
        ["lastname eq 'O'Brien'", /unterminated literal/],
        ['lastname eq', /Expected a column or a value/],
        ["Microsoft.Dynamics.CRM.In(PropertyName='lastname',PropertyValues=['a'])", /not supported/],
        ["primarycontactid/fullname eq 'x'", /unexpected '\/'/],
        ["lastname eq 'a' xor firstname eq 'b'", /Expected 'and', 'or'/],
        ['('.repeat(100) + "lastname eq 'a'" + ')'.repeat(100), /nested more than/],
      ] as const) {
        const error = await failure(api.retrieveMultiple({ collection: 'contacts', filter }));
        expect(error.status, filter).toBe(400);
        expect(error.code).toBe('0x80060888');
        expect(error.message).toMatch(message);
      }

      // Any string of filter-ish pieces is answered with rows or a 400, never a 500 or a dropped connection.
      const pieces = ['lastname', 'Name', 'eq', 'ne', 'gt', "'a'", "'it''s'", "'", '(', ')', 'and', 'or', 'not'];
      pieces.push('null', '-2.5', 'true', '3f2504e0-4f89-11d3-9a0c-0305e82c3301', ',', 'contains', '/', 'In(');
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.constantFrom(...pieces), { minLength: 1, maxLength: 12 }).map((words) => words.join(' ')),
          async (filter) => {
            const answer = await api.retrieveMultiple({ collection: 'contacts', filter }).then(
              () => 200,
              (error: RequestError) => error.status,
            );
            expect([200, 400]).toContain(answer);
          },
        ),
        { numRuns: 200 },
      );

      const unknown = await failure(api.retrieveMultiple({ collection: 'leads' }));
      expect(unknown.status).toBe(404);
      expect(unknown.message).toBe("Resource not found for the segment 'leads'.");
    });
  });

  it('pages with Prefer: odata.maxpagesize through @odata.nextLink, and $top limits without paging', async () => {
    await withDataverse({}, async (api) => {
      for (let n = 0; n < 7; n++)
        await api.create({ collection: 'accounts', data: { name: `Account ${n}`, revenue: n } });
      const request = { collection: 'accounts', select: ['name'], filter: 'revenue ge 1', maxPageSize: 3 };

      const pages: string[][] = [];
      let response = await api.retrieveMultiple(request);
      for (;;) {
        pages.push(response.value.map((row: { name: string }) => row.name));
        if (!response.oDataNextLink) break;
        expect(response.oDataNextLink).toMatch(
          /^http:\/\/127\.0\.0\.1:\d+\/api\/data\/v9\.2\/accounts\?.*\$skiptoken=/,
        );
        response = await api.retrieveMultiple(request, response.oDataNextLink);
      }
      expect(pages.map((page) => page.length)).toEqual([3, 3]);
      expect(pages.flat().sort()).toEqual([
        'Account 1',
        'Account 2',
        'Account 3',
        'Account 4',
        'Account 5',
        'Account 6',
      ]);

      const ordered = await api.retrieveMultiple({
        collection: 'accounts',
        select: ['name'],
        orderBy: ['revenue desc'],
        top: 2,
      });
      expect(ordered.value.map((row: { name: string }) => row.name)).toEqual(['Account 6', 'Account 5']);
      expect(ordered.oDataNextLink).toBeUndefined();
    });
  });

  it('change tracking: a tracked read pages all rows to a delta link, which then returns each change once in change order and deletions as $deletedEntity', async () => {
    await withDataverse({}, async (api) => {
      const ids = { a: randomUUID(), b: randomUUID(), c: randomUUID(), d: randomUUID(), e: randomUUID() };
      for (const name of ['a', 'b', 'c'] as const) {
        await api.create({ collection: 'accounts', data: { accountid: ids[name], name } });
      }
      const tracked = { collection: 'accounts', select: ['name'], trackChanges: true, maxPageSize: 2 };
      const initial = await api.retrieveMultiple(tracked);
      expect(initial.value).toHaveLength(2);
      expect(initial.oDataDeltaLink).toBeUndefined();
      const rest = await api.retrieveMultiple(tracked, initial.oDataNextLink);
      expect([...initial.value, ...rest.value].map((row: { name: string }) => row.name).sort()).toEqual([
        'a',
        'b',
        'c',
      ]);
      const deltaLink = rest.oDataDeltaLink!;
      expect(deltaLink).toMatch(
        /^http:\/\/127\.0\.0\.1:\d+\/api\/data\/v9\.2\/accounts\?\$select=name&\$deltatoken=\d+!/,
      );

      await api.update({ collection: 'accounts', key: ids.b, data: { name: 'b1' } });
      await api.update({ collection: 'accounts', key: ids.b, data: { name: 'b2' } });
      await api.create({ collection: 'accounts', data: { accountid: ids.d, name: 'd' } });
      await api.deleteRecord({ collection: 'accounts', key: ids.c });
      await api.create({ collection: 'accounts', data: { accountid: ids.e, name: 'e' } });
      await api.deleteRecord({ collection: 'accounts', key: ids.e });

      const changes: Record<string, unknown>[] = [];
      const pageSizes: number[] = [];
      let next: string | undefined = deltaLink;
      let newDeltaLink: string | undefined;
      while (next) {
        const page: RetrieveMultipleResponse<Record<string, unknown>> = await api.retrieveMultiple(
          { collection: 'accounts', maxPageSize: 3 },
          next,
        );
        changes.push(...page.value);
        pageSizes.push(page.value.length);
        next = page.oDataNextLink;
        newDeltaLink = page.oDataDeltaLink;
      }
      expect(pageSizes).toEqual([3, 1]);
      expect(changes.map((change) => change.name ?? change.id)).toEqual(['b2', 'd', ids.c, ids.e]);
      expect(changes[2]).toMatchObject({
        '@odata.context': expect.stringMatching(/\/api\/data\/v9\.2\/\$metadata#accounts\/\$deletedEntity$/),
        id: ids.c,
        reason: 'deleted',
      });

      const quiet = await api.retrieveMultiple({ collection: 'accounts' }, newDeltaLink);
      expect(quiet.value).toEqual([]);
      expect(quiet.oDataDeltaLink).toBeDefined();
    });
  });

  it('an expired delta link answers 400 0x80044352, and a new tracked read gives a delta link that works', async () => {
    await withDataverse({}, async (api, dataverse) => {
      await api.create({ collection: 'contacts', data: { lastname: 'Before' } });
      const first = await api.retrieveMultiple({ collection: 'contacts', select: ['lastname'], trackChanges: true });
      dataverse.faults.expireDeltaTokens();

      const expired = await failure(api.retrieveMultiple({ collection: 'contacts' }, first.oDataDeltaLink));
      expect(expired.status).toBe(400);
      expect(expired.code).toBe('0x80044352');
      expect(expired.message).toMatch(/expired/);

      const full = await api.retrieveMultiple({ collection: 'contacts', select: ['lastname'], trackChanges: true });
      expect(full.value.map((row: { lastname: string }) => row.lastname)).toEqual(['Before']);
      await api.create({ collection: 'contacts', data: { lastname: 'After' } });
      const delta = await api.retrieveMultiple({ collection: 'contacts' }, full.oDataDeltaLink);
      expect(delta.value.map((row: { lastname: string }) => row.lastname)).toEqual(['After']);

      const withFilter = await failure(
        api.retrieveMultiple({ collection: 'contacts', filter: "lastname eq 'x'", trackChanges: true }),
      );
      expect(withFilter.message).toBe(
        'The "$filter" query parameter isn\'t supported when Change Tracking is enabled.',
      );
    });
  });

  it('above the rate limit answers 429 0x80072322 with Retry-After, which reaches the client error with its headers', async () => {
    await withDataverse({ rateLimit: { maxRequests: 3, windowMs: 400 } }, async (api, dataverse) => {
      for (let n = 0; n < 3; n++) await api.retrieveMultiple({ collection: 'accounts' });
      const throttled = await failure(api.retrieveMultiple({ collection: 'accounts' }));
      expect(throttled.status).toBe(429);
      expect(throttled.code).toBe('0x80072322');
      expect(throttled.message).toBe('Number of requests exceeded the limit of 3 over time window of 0.4 seconds.');
      expect(throttled.headers['retry-after']).toBe('1');

      await sleep(450);
      await api.retrieveMultiple({ collection: 'accounts' });

      dataverse.faults.throttleNext(1, 7);
      const injected = await failure(api.retrieveMultiple({ collection: 'accounts' }));
      expect(injected.status).toBe(429);
      expect(injected.headers['retry-after']).toBe('7');
      expect(dataverse.stats().throttled).toBe(2);
    });
  });

  it('failNext answers before doing anything, and a filter narrows it to one method and table', async () => {
    await withDataverse({}, async (api, dataverse) => {
      dataverse.faults.failNext(1, 503);
      const failed = await failure(api.create({ collection: 'accounts', data: { name: 'Not written' } }));
      expect(failed.status).toBe(503);
      expect(dataverse.rows('accounts')).toEqual([]);

      const id: string = await api.create({ collection: 'contacts', data: { lastname: 'Berg' } });
      dataverse.faults.failNext(1, 500, { method: 'PATCH', table: 'contacts' });
      await api.retrieve({ collection: 'contacts', key: id });
      await api.create({ collection: 'accounts', data: { name: 'Written' } });
      expect((await failure(api.update({ collection: 'contacts', key: id, data: { lastname: 'Holm' } }))).status).toBe(
        500,
      );
      await api.update({ collection: 'contacts', key: id, data: { lastname: 'Holm' } });
      expect(dataverse.row('contacts', id)?.lastname).toBe('Holm');
    });
  });

  it('dropNextAfterWrite applies the write and cuts the connection, so a retried create finds its row taken', async () => {
    await withDataverse({}, async (api, dataverse) => {
      const id = randomUUID();
      dataverse.faults.dropNextAfterWrite(1);
      const lost = await failure(api.create({ collection: 'contacts', data: { contactid: id, lastname: 'Landed' } }));
      expect(lost.status).toBeUndefined();
      expect(dataverse.row('contacts', id)?.lastname).toBe('Landed');

      const retried = await failure(
        api.create({ collection: 'contacts', data: { contactid: id, lastname: 'Landed' } }),
      );
      expect(retried.status).toBe(412);
      expect(dataverse.stats().dropped).toBe(1);
    });
  });

  it('delayNext answers late, so a client timeout fires while the write still takes effect', async () => {
    await withDataverse({}, async (_api, dataverse) => {
      const api = clientFor(dataverse, { timeout: 150 });
      const id: string = await api.create({ collection: 'contacts', data: { lastname: 'Berg' } });
      dataverse.faults.delayNext(1, 1000);
      const started = Date.now();
      const timedOut = await failure(api.update({ collection: 'contacts', key: id, data: { lastname: 'Holm' } }));
      expect(timedOut.status).toBeUndefined();
      expect(Date.now() - started).toBeLessThan(900);
      expect(dataverse.row('contacts', id)?.lastname).toBe('Holm');
      expect((await api.retrieve({ collection: 'contacts', key: id, select: ['lastname'] })).lastname).toBe('Holm');
    });
  });

  it('refuses a body that is not a JSON object, a bad column name or more than 1 MiB with nothing written', async () => {
    await withDataverse({}, async (api, dataverse) => {
      const refusals = [
        ['just text', 400, /must be a JSON object/],
        [['a', 'b'], 400, /must be a JSON object/],
        [{ '1st': 'digit first' }, 400, /'1st' is not a column name/],
        [{ Name: 'Upper case' }, 400, /'Name' is not a column name/],
        [{ 'primarycontactid@odata.bind': '/contacts(00000000-0000-0000-0000-000000000001)' }, 400, /@odata.bind/],
        [{ address: { city: 'Aarhus' } }, 400, /must be text, a number/],
        [{ description: 'x'.repeat(1024 * 1024) }, 413, /larger than/],
      ] as const;
      for (const [data, status, message] of refusals) {
        const error = await failure(api.create({ collection: 'accounts', data }));
        expect(error.status).toBe(status);
        expect(error.message).toMatch(message);
        if (status === 400) expect(error.code).toBe('0x80048d19');
      }
      // dynamics-web-api always sends valid JSON, so a broken body can only come from a raw client.
      const broken = await fetch(`${dataverse.apiUrl}accounts`, {
        method: 'POST',
        headers: { Authorization: 'Bearer dev-token', 'Content-Type': 'application/json' },
        body: '{"name": ',
      });
      expect(broken.status).toBe(400);
      expect(await broken.json()).toEqual({
        error: { code: '0x80048d19', message: expect.stringMatching(/not valid JSON/) as unknown },
      });
      expect(dataverse.rows('accounts')).toEqual([]);
    });
  });

  it('wants a bearer token (any will do) and answers WhoAmI', async () => {
    await withDataverse({}, async (api, dataverse) => {
      const anonymous = new DynamicsWebApi({ serverUrl: dataverse.url, propagateErrors: true });
      const refused = await failure(anonymous.retrieveMultiple({ collection: 'accounts' }));
      expect(refused.status).toBe(401);
      expect(refused.headers['www-authenticate']).toBe('Bearer');
      expect(await api.callFunction('WhoAmI')).toMatchObject({ UserId: expect.any(String) });
    });
  });

  it('counts requests by method and table, and takes the same fault switches over HTTP at /_dev', async () => {
    await withDataverse({}, async (api, dataverse) => {
      await api.create({ collection: 'accounts', data: { name: 'One' } });
      await api.retrieveMultiple({ collection: 'accounts' });
      await api.retrieveMultiple({ collection: 'contacts' });

      const armed = await fetch(`${dataverse.url}/_dev/faults`, {
        method: 'POST',
        body: JSON.stringify({ failNext: { count: 1, status: 503, table: 'contacts' } }),
      });
      expect(armed.status).toBe(204);
      expect((await failure(api.retrieveMultiple({ collection: 'contacts' }))).status).toBe(503);

      const stats = (await (await fetch(`${dataverse.url}/_dev/stats`)).json()) as unknown;
      expect(stats).toEqual({
        total: 4,
        byMethod: { POST: 1, GET: 3 },
        byTable: { accounts: { POST: 1, GET: 1 }, contacts: { GET: 2 } },
        throttled: 0,
        failed: 1,
        dropped: 0,
      });
      const unknownSwitch = await fetch(`${dataverse.url}/_dev/faults`, { method: 'POST', body: '{"explode":{}}' });
      expect(unknownSwitch.status).toBe(400);
    });
  });

  describe('with a data file', () => {
    let directory: string;
    beforeAll(async () => {
      directory = await mkdtemp(join(tmpdir(), 'dev-dataverse-'));
    });
    afterAll(() => rm(directory, { recursive: true, force: true }));

    it('keeps rows, versions and delta links across a restart', async () => {
      const dataFile = join(directory, 'dataverse.json');
      const id = randomUUID();
      let deltaLink = '';
      let version = 0;
      let port = 0;
      await withDataverse({ dataFile }, async (api, dataverse) => {
        port = dataverse.port;
        await api.create({ collection: 'contacts', data: { contactid: id, lastname: 'Berg', emailaddress1: null } });
        const gone: string = await api.create({ collection: 'contacts', data: { lastname: 'Gone' } });
        await api.deleteRecord({ collection: 'contacts', key: gone });
        const tracked = await api.retrieveMultiple({
          collection: 'contacts',
          select: ['lastname'],
          trackChanges: true,
        });
        deltaLink = tracked.oDataDeltaLink!;
        version = dataverse.row('contacts', id)!.versionnumber as number;
      });

      await withDataverse({ dataFile, port }, async (api, dataverse) => {
        expect(dataverse.row('contacts', id)).toMatchObject({
          lastname: 'Berg',
          emailaddress1: null,
          versionnumber: version,
        });
        expect(dataverse.rows('contacts')).toHaveLength(1);
        const updated = await api.update<object, Record<string, unknown>>({
          collection: 'contacts',
          key: id,
          data: { lastname: 'Holm' },
          returnRepresentation: true,
        });
        expect(updated.versionnumber as number).toBeGreaterThan(version);
        const delta = await api.retrieveMultiple({ collection: 'contacts' }, deltaLink);
        expect(delta.value.map((row: { lastname: string }) => row.lastname)).toEqual(['Holm']);
      });
    });
  });
});
