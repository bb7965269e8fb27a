/**
 * The emulated Lambda service on its own: an asynchronous event that waits
 * for an environment past its function's maximum event age is dropped, as
 * Lambda drops it, and the template says what that age is.
 */
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { DEFAULT_TEMPLATE_PATH, loadTemplate } from '../scripts/aws-template.js';
import { EXPIRED, LambdaRuntime } from '../scripts/emulator/lambda-runtime.js';
import { readStack, type FunctionSpec } from '../scripts/emulator/stack.js';
import { buildAwsOnce, FIXTURE_DIR, testLogger } from './support/emulator.js';

it('reads each function maximum event age from its EventInvokeConfig, and gives the others Lambda default of 6 hours', async () => {
  const stack = readStack({ template: await loadTemplate(DEFAULT_TEMPLATE_PATH), distDir: await buildAwsOnce(), stage: 'dev', region: 'us-east-1' });
  const ages = Object.fromEntries([...stack.functions.values()].map((spec) => [spec.logicalId, spec.maximumEventAgeMs]));
  expect(ages).toEqual({ ConnectFunction: 21_600_000, MessageFunction: 21_600_000, DisconnectFunction: 21_600_000, WelcomeFunction: 60_000 });
});

it('drops an asynchronous event still waiting for an environment past its maximum age, and runs what comes after', async () => {
  const echo: FunctionSpec = {
    logicalId: 'Echo',
    name: 'echo',
    arn: 'arn:aws:lambda:us-east-1:000000000000:function:echo',
    file: join(FIXTURE_DIR, 'handlers/echo.mjs'),
    exportName: 'handler',
    environment: {},
    timeoutMs: 1000,
    memoryMb: 128,
    runtime: 'nodejs20.x',
    maximumEventAgeMs: 200,
    role: undefined,
  };
  const warnings: Array<{ event: string; fields: Record<string, unknown> }> = [];
  const logger = { ...testLogger(), warn: (event: string, fields: Record<string, unknown> = {}) => void warnings.push({ event, fields }) };
  const runtime = new LambdaRuntime({ functions: new Map([['echo', echo]]), environment: {}, maxEnvironments: 1, logger, onOutput: () => undefined });
  try {
    // The only environment hangs until its timeout (1 s), far past the event's 200 ms.
    const hanging = runtime.invoke('echo', { body: '"hang"' });
    runtime.invokeLater('echo', { body: 'late' });
    expect(await hanging).toMatchObject({ ok: false, error: { errorType: 'Sandbox.Timedout' } });
    const after = await runtime.invoke('echo', { body: 'after' });
    expect(after).toMatchObject({ ok: true, result: { statusCode: 200 } });
    expect(runtime.stats().echo).toMatchObject({ invocations: 2, expired: 1 });
    expect(warnings).toEqual([{ event: 'async_event_expired', fields: expect.objectContaining({ functionName: 'echo', error: expect.objectContaining({ errorType: EXPIRED }) }) }]);
  } finally {
    await runtime.stop();
  }
});
