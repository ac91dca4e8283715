// Import boundaries (DESIGN.md §4): the layers of the app and what each may import. `npm test` lints, so a
// forbidden import fails the build; test/unit/boundaries.test.ts proves each rule catches what it should.
// Tests, the benchmark and local/ (the development runtime) are tools and may reach anything.

const tables = { group: ['@azure/data-tables'], message: 'Only shared/storage talks to Table Storage.' };
const serviceBus = { group: ['@azure/service-bus'], message: 'Only shared/messaging talks to Service Bus.' };
const dataverse = {
  group: ['dynamics-web-api', '@azure/identity'],
  message: 'Only shared/crm talks to Dataverse (and gets its tokens).',
};
const functionsLibrary = {
  group: ['@azure/functions'],
  message: 'Only functions/ registers with the Functions runtime; use cases take their inputs as arguments.',
};
const adapters = (up) => ({
  group: [`${up}storage`, `${up}storage/*`, `${up}messaging`, `${up}messaging/*`, `${up}crm`, `${up}crm/*`],
  message: 'Depend on the ports (shared/domain/ports.ts); only the composition root (shared/app.ts) wires adapters.',
});

/** Each zone and the imports it may not use; a file takes the rules of the first zone it falls in. */
export const zones = [
  {
    name: 'domain',
    files: ['shared/domain/**/*.ts'],
    patterns: [
      { group: ['../*', '@azure/*'], message: 'shared/domain imports nothing outside itself: it is the pure core.' },
    ],
  },
  { name: 'storage', files: ['shared/storage/**/*.ts'], patterns: [serviceBus, dataverse, functionsLibrary] },
  { name: 'messaging', files: ['shared/messaging/**/*.ts'], patterns: [tables, dataverse, functionsLibrary] },
  { name: 'crm', files: ['shared/crm/**/*.ts'], patterns: [tables, serviceBus, functionsLibrary] },
  {
    name: 'use cases',
    files: ['shared/operations/**/*.ts', 'shared/jobs/**/*.ts', 'shared/coupling/**/*.ts', 'shared/alerts/**/*.ts'],
    patterns: [
      tables,
      serviceBus,
      dataverse,
      functionsLibrary,
      adapters('../'),
      { group: ['../http', '../http/*'], message: 'Use cases do not know HTTP; shared/http calls them.' },
      {
        group: ['../app', '../config'],
        message: 'Use cases receive their dependencies and settings (SyncContext); they never build or read them.',
      },
    ],
  },
  {
    name: 'http',
    files: ['shared/http/**/*.ts'],
    patterns: [tables, serviceBus, dataverse, functionsLibrary, adapters('../')],
  },
  {
    name: 'functions',
    files: ['functions/**/*.ts'],
    patterns: [tables, serviceBus, dataverse, adapters('../shared/')],
  },
];

/**
 * The zones as ESLint flat-config objects.
 * @type {import('eslint').Linter.Config[]}
 */
export const boundaries = zones.map(({ files, patterns }) => ({
  files,
  rules: { 'no-restricted-imports': ['error', { patterns }] },
}));
