import { RetryMode } from '@azure/service-bus';
import { describe, expect, it } from 'vitest';

import { clientRetryOptions } from '../../local/host/index';

describe('the local host’s Service Bus retries', () => {
  it('default as the Functions extension does: exponential from 0.8 s to a minute, 3 retries, a minute a try', () => {
    expect(clientRetryOptions(undefined)).toEqual({
      mode: RetryMode.Exponential,
      retryDelayInMs: 800,
      maxRetryDelayInMs: 60_000,
      maxRetries: 3,
      timeoutInMs: 60_000,
    });
  });

  it('follow host.json clientRetryOptions', () => {
    const options = { mode: 'fixed', delay: '00:00:02', maxDelay: '00:00:30', maxRetries: '5', tryTimeout: '00:00:10' };
    expect(clientRetryOptions(options)).toEqual({
      mode: RetryMode.Fixed,
      retryDelayInMs: 2000,
      maxRetryDelayInMs: 30_000,
      maxRetries: 5,
      timeoutInMs: 10_000,
    });
  });
});
