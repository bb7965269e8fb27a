/**
 * What a dry run and a deploy's progress lines print of a call's parameters:
 * credentials masked by the name that holds them (`API_KEY` too) and a
 * password in any URL's userinfo, other values as they are.
 */
import { describe, expect, it } from 'vitest';
import { formatCall } from '../scripts/deploy/plan.js';

describe('a printed call', () => {
  it('masks keys, tokens and URL passwords, and leaves names such as S3\'s Key readable', () => {
    const line = formatCall('CloudBase', 'UpdateFunctionConfiguration', {
      envVariables: { API_KEY: 'SEKRIT-apikey', 'signing-key': 'SEKRIT-sign', REDIS_URL: 'redis://:SEKRIT-redispw@10.0.0.5:6379/0', HOOK: 'https://bot:SEKRIT-hook@example.com/x', ROOM: 'lobby' },
      Bucket: 'artifacts',
      Key: 'lambda.zip',
    });
    expect(line).not.toContain('SEKRIT');
    expect(line).toContain('"REDIS_URL":"redis://:****@10.0.0.5:6379/0"');
    expect(line).toContain('"HOOK":"https://bot:****@example.com/x"');
    expect(line).toContain('"API_KEY":"SEKR****"');
    expect(line).toContain('"ROOM":"lobby"');
    expect(line).toContain('"Key":"lambda.zip"');
  });
});
