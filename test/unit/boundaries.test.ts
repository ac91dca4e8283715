import { Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';

import { boundaries } from '../../eslint.boundaries.mjs';

/** The project's import boundaries (eslint.boundaries.mjs) applied to a line of code in a given file. */
const linter = new Linter({ configType: 'flat' });
const config: Linter.Config[] = [
  { files: ['**/*.ts'], languageOptions: { parser: tseslint.parser as Linter.Parser } },
  ...boundaries,
];
const violations = (file: string, code: string) =>
  linter.verify(code, config, file).map((m) => `${m.ruleId}: ${m.message}`);

describe('import boundaries', () => {
  it.each([
    ['shared/operations/submit.ts', "import { TableClient } from '@azure/data-tables';"],
    ['shared/jobs/retention.ts', "import { ServiceBusClient } from '@azure/service-bus';"],
    ['shared/operations/list.ts', "import { openStore } from '../storage';"],
    ['shared/operations/list.ts', "import { TableOperationIndex } from '../storage/operation-index';"],
    ['shared/jobs/index.ts', "import { json } from '../http/endpoint';"],
    ['shared/operations/submit.ts', "import { app } from '@azure/functions';"],
    ['shared/operations/submit.ts', "import { services } from '../app';"],
    ['shared/jobs/retention.ts', "import { settings } from '../config';"],
    ['shared/domain/lifecycle.ts', "import type { SyncContext } from '../operations/context';"],
    ['shared/domain/ports.ts', "import type { TableClient } from '@azure/data-tables';"],
    ['shared/storage/feed.ts', "import { ServiceBusClient } from '@azure/service-bus';"],
    ['shared/messaging/doorbell.ts', "import { TableClient } from '@azure/data-tables';"],
    ['shared/http/endpoint.ts', "import { TableCustomerStore } from '../storage/customer-store';"],
    ['functions/operation-get.ts', "import { TableClient } from '@azure/data-tables';"],
    ['functions/operation-get.ts', "import { openStore } from '../shared/storage';"],
    ['functions/operation-get.ts', "import { ServiceBusDoorbell } from '../shared/messaging/doorbell';"],
    ['shared/coupling/sync.ts', "import { DynamicsWebApi } from 'dynamics-web-api';"],
    ['shared/coupling/sync.ts', "import { Dataverse } from '../crm/dataverse';"],
    ['shared/storage/sync-records.ts', "import { DefaultAzureCredential } from '@azure/identity';"],
    ['shared/crm/dataverse.ts', "import { TableClient } from '@azure/data-tables';"],
  ])('%s may not %s', (file, code) => {
    expect(violations(file, code)).toEqual([expect.stringMatching(/^no-restricted-imports: /)]);
  });

  it.each([
    ['shared/storage/feed.ts', "import { TableClient } from '@azure/data-tables';"],
    ['shared/messaging/doorbell.ts', "import { ServiceBusClient } from '@azure/service-bus';"],
    ['shared/domain/lifecycle.ts', "import { accepted } from './operation';"],
    ['shared/operations/submit.ts', "import type { Store } from '../domain/ports';"],
    ['shared/app.ts', "import { openStore } from './storage';"],
    ['functions/operation-get.ts', "import { app } from '@azure/functions';"],
    ['test/e2e/stack.ts', "import { TableClient } from '@azure/data-tables';"],
    ['local/host/servicebus.ts', "import { ServiceBusClient } from '@azure/service-bus';"],
    ['shared/crm/dataverse.ts', "import { DynamicsWebApi } from 'dynamics-web-api';"],
    ['shared/app.ts', "import { Dataverse } from './crm/dataverse';"],
  ])('%s may %s', (file, code) => {
    expect(violations(file, code)).toEqual([]);
  });
});
