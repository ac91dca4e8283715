import { describe, expect, it } from 'vitest';

import { consoleLink, decide, retryDelayMs, webhookProblem } from '../../shared/domain/alerts';

const policy = { hosts: ['hooks.example.com', 'ops.example.org'], allowLoopback: false };

describe('alert rules', () => {
  it('fire when the value reaches the threshold, resolve when it falls below, and nothing in between', () => {
    const open = { firedAt: '2026-01-01T00:00:00.000Z', value: 3, recorded: true };
    expect(decide({ threshold: 3 }, 2)).toBe('none');
    expect(decide({ threshold: 3 }, 3)).toBe('fire');
    expect(decide({ threshold: 3, open }, 9)).toBe('none');
    expect(decide({ threshold: 3, open }, 3)).toBe('none');
    expect(decide({ threshold: 3, open }, 2)).toBe('resolve');
  });

  it('retry a failed delivery after 1, 2, 4, 8 minutes', () => {
    expect([1, 2, 3, 4].map(retryDelayMs)).toEqual([60_000, 120_000, 240_000, 480_000]);
  });

  it('link each metric to the console view that shows what it counts', () => {
    const base = 'https://sync.example.com/api/console/';
    const at = new Date('2026-05-01T12:00:00.000Z');
    expect(consoleLink(base, 'failedOperations', 15, at)).toBe(`${base}#/operations?status=Failed`);
    expect(consoleLink(base, 'pendingOverdue', 15, at)).toBe(
      `${base}#/operations?status=Pending&to=2026-05-01T11%3A45%3A00.000Z`,
    );
    expect(consoleLink(base, 'syncErrors', 15, at)).toBe(`${base}#/sync-errors`);
    expect(consoleLink(base, 'deadLetters', 15, at)).toBe(`${base}#/dead-letters`);
  });
});

describe('webhook URLs', () => {
  it('allow https to a listed host (exact, in any case), with any port and path', () => {
    for (const url of [
      'https://hooks.example.com/a?b=1',
      'https://HOOKS.example.com:8443/x',
      'https://ops.example.org',
    ]) {
      expect(webhookProblem(url, policy), url).toBeUndefined();
    }
  });

  it('refuse plain http, unlisted hosts (also look-alikes), credentials, and other schemes', () => {
    expect(webhookProblem('http://hooks.example.com/x', policy)).toMatch(/https/);
    expect(webhookProblem('https://evil.example.com/x', policy)).toMatch(/not in ALERT_WEBHOOK_HOSTS/);
    expect(webhookProblem('https://hooks.example.com.evil.io/x', policy)).toMatch(/not in ALERT_WEBHOOK_HOSTS/);
    expect(webhookProblem('https://example.com/x', policy)).toMatch(/not in ALERT_WEBHOOK_HOSTS/);
    expect(webhookProblem('https://a:b@hooks.example.com/x', policy)).toMatch(/credentials/);
    expect(webhookProblem('https://a@hooks.example.com/x', policy)).toMatch(/credentials/);
    expect(webhookProblem('ftp://hooks.example.com/x', policy)).toMatch(/https/);
    expect(webhookProblem('javascript:alert(1)', policy)).toMatch(/https/);
    expect(webhookProblem('hooks.example.com/x', policy)).toMatch(/not a URL/);
  });

  it('allow this machine (http too) only when the setting says so', () => {
    for (const url of ['http://localhost:9000/x', 'http://127.0.0.1/x', 'https://[::1]:8443/x', 'http://127.1.2.3/']) {
      expect(webhookProblem(url, policy), url).toMatch(/ALERT_WEBHOOK_ALLOW_LOOPBACK/);
      expect(webhookProblem(url, { ...policy, allowLoopback: true }), url).toBeUndefined();
    }
    expect(webhookProblem('ftp://localhost/x', { ...policy, allowLoopback: true })).toMatch(/http/);
    expect(webhookProblem('http://u:p@localhost/x', { ...policy, allowLoopback: true })).toMatch(/credentials/);
  });
});
