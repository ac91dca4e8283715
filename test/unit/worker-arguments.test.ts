import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { workerArguments } from '../../local/host-process';

describe('the local host’s Node arguments', () => {
  it('come from languageWorkers__node__arguments, split on whitespace, as Azure starts its Node worker', () => {
    const settings = { languageWorkers__node__arguments: '  --max-old-space-size=384   --trace-gc ' };
    expect(workerArguments(settings)).toEqual(['--max-old-space-size=384', '--trace-gc']);
    expect(workerArguments({})).toEqual([]);
  });

  it('cap the heap in local.settings.json, so the host’s memory stays bounded under load', () => {
    const file = JSON.parse(readFileSync('local.settings.json', 'utf8')) as { Values: Record<string, string> };
    expect(workerArguments(file.Values)).toContain('--max-old-space-size=384');
  });
});
