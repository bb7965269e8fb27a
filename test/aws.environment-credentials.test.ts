/**
 * The credential provider the AWS bundles use in place of the SDK's default
 * chain: the SDK asks it on every request and trusts it to memoize, as its
 * own defaultProvider does.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { defaultProvider, MissingEnvironmentCredentialsError } from '../functions/aws/environment-credentials.js';

const NAMES = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_CREDENTIAL_EXPIRATION'] as const;
let saved: Record<string, string | undefined>;

beforeEach(() => {
  saved = Object.fromEntries(NAMES.map((name) => [name, process.env[name]]));
  for (const name of NAMES) delete process.env[name];
});
afterEach(() => {
  for (const name of NAMES) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
});

function setKeys(accessKeyId: string, expiration?: Date): void {
  process.env.AWS_ACCESS_KEY_ID = accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = `secret-of-${accessKeyId}`;
  process.env.AWS_SESSION_TOKEN = `token-of-${accessKeyId}`;
  if (expiration) process.env.AWS_CREDENTIAL_EXPIRATION = expiration.toISOString();
  else delete process.env.AWS_CREDENTIAL_EXPIRATION;
}

it('reads the environment once and gives the same credentials to every request after', async () => {
  setKeys('ASIAFIRST');
  const provide = defaultProvider();
  const first = await provide();
  expect(first).toEqual({ accessKeyId: 'ASIAFIRST', secretAccessKey: 'secret-of-ASIAFIRST', sessionToken: 'token-of-ASIAFIRST' });
  setKeys('ASIASECOND');
  expect(await provide()).toBe(first);
  // Each provider (one per SDK client) reads for itself.
  expect((await defaultProvider()()).accessKeyId).toBe('ASIASECOND');
});

it('reads again once the credentials are within five minutes of their expiration', async () => {
  setKeys('ASIANEAR', new Date(Date.now() + 60_000));
  const provide = defaultProvider();
  expect((await provide()).accessKeyId).toBe('ASIANEAR');
  setKeys('ASIAFRESH', new Date(Date.now() + 3_600_000));
  expect((await provide()).accessKeyId).toBe('ASIAFRESH');
  setKeys('ASIALATER', new Date(Date.now() + 3_600_000));
  expect((await provide()).accessKeyId).toBe('ASIAFRESH');
});

it('does not remember finding none: keys set later are found', async () => {
  const provide = defaultProvider();
  await expect(provide()).rejects.toBeInstanceOf(MissingEnvironmentCredentialsError);
  setKeys('ASIALATE');
  expect((await provide()).accessKeyId).toBe('ASIALATE');
});
