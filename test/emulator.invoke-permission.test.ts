/**
 * API Gateway calls a route's function only when it may: through an
 * AWS::Lambda::Permission for apigateway.amazonaws.com whose SourceArn fits
 * the route, or through the integration's CredentialsArn role. Without it
 * AWS fails the route before the function runs ("Invalid permissions on
 * Lambda function"); so does the emulator, from the fixture stack with one
 * grant taken away at a time.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTemplate, type Template } from '../scripts/aws-template.js';
import type { RunningEmulator } from '../scripts/emulator/index.js';
import { readStack } from '../scripts/emulator/stack.js';
import { createLogger } from '../shared/log.js';
import { TestClient } from './support/client.js';
import { FIXTURE_DIR, Gate, startFixtureEmulator } from './support/emulator.js';

let fixture: Template;
let gate: Gate;
const running: RunningEmulator[] = [];

beforeAll(async () => {
  fixture = await loadTemplate(join(FIXTURE_DIR, 'template.yaml'));
  gate = await Gate.start();
});
afterAll(async () => {
  for (const emulator of running) await emulator.stop();
  await gate?.stop();
});

/** The fixture with `change` applied to a copy of its resources. */
function fixtureWith(change: (resources: Record<string, any>) => void): Template {
  const template = structuredClone(fixture);
  change(template.Resources as Record<string, any>);
  return template;
}

function refusals(template: Template): Record<string, string | undefined> {
  const stack = readStack({ template, distDir: join(FIXTURE_DIR, 'handlers'), stage: 'dev', region: 'us-east-1' });
  return Object.fromEntries([...stack.routes.values()].map((route) => [route.routeKey, route.invokeRefusal]));
}

describe('which routes API Gateway may invoke', () => {
  it('is every route of the fixture, by resource policy, SourceArn wildcard and CredentialsArn role', () => {
    expect(refusals(fixture)).toEqual({ $connect: undefined, $default: undefined, shout: undefined, $disconnect: undefined });
  });

  it('is no route whose function has no permission, and the refusal names what is missing', () => {
    const refused = refusals(fixtureWith((resources) => delete resources.ConnectPermission));
    expect(refused.$connect).toMatch(/^no AWS::Lambda::Permission lets apigateway\.amazonaws\.com invoke cloudsocket-fixture-connect from arn:aws:execute-api:us-east-1:\d{12}:\w+\/dev\/\$connect, and ConnectIntegration has no CredentialsArn/);
    expect(refused.$default).toBeUndefined();
  });

  it.each([
    ['a SourceArn naming another route', (permission: any) => (permission.Properties.SourceArn = { 'Fn::Sub': 'arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:${Api}/*/$default' })],
    ['a SourceArn of another stage', (permission: any) => (permission.Properties.SourceArn = { 'Fn::Sub': 'arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:${Api}/prod/$connect' })],
    ['a SourceAccount of another account', (permission: any) => (permission.Properties.SourceAccount = '111122223333')],
    ['another principal', (permission: any) => (permission.Properties.Principal = 'events.amazonaws.com')],
    ['another action', (permission: any) => (permission.Properties.Action = 'lambda:GetFunction')],
  ])('is not a route whose permission has %s', (_label, spoil) => {
    expect(refusals(fixtureWith((resources) => spoil(resources.ConnectPermission))).$connect).toMatch(/^no AWS::Lambda::Permission/);
  });

  it('is a route whose permission allows lambda:*, or names the function by its ARN with no SourceArn', () => {
    const refused = refusals(
      fixtureWith((resources) => {
        resources.ConnectPermission.Properties.Action = 'lambda:*';
        resources.EchoPermission.Properties.SourceArn = undefined;
      }),
    );
    expect(refused).toMatchObject({ $connect: undefined, $default: undefined, shout: undefined });
  });

  it('is not a route whose CredentialsArn role API Gateway may not assume, or that may not invoke the function', () => {
    const untrusted = fixtureWith((resources) => (resources.InvokeRole.Properties.AssumeRolePolicyDocument.Statement[0].Principal.Service = 'lambda.amazonaws.com'));
    expect(refusals(untrusted).$disconnect).toMatch(/does not let apigateway\.amazonaws\.com assume it/);
    const elsewhere = fixtureWith((resources) => (resources.InvokeRole.Properties.Policies[0].PolicyDocument.Statement[0].Resource = { 'Fn::GetAtt': ['EchoFunction', 'Arn'] }));
    expect(refusals(elsewhere).$disconnect).toMatch(/does not allow lambda:InvokeFunction on arn:aws:lambda:us-east-1:\d{12}:function:cloudsocket-fixture-disconnect/);
  });
});

describe('a route API Gateway may not invoke', () => {
  async function start(template: Template): Promise<{ emulator: RunningEmulator; lines: string[] }> {
    const lines: string[] = [];
    const emulator = await startFixtureEmulator(gate, { template, distDir: join(FIXTURE_DIR, 'handlers'), logger: createLogger('debug', (line) => lines.push(line)) });
    running.push(emulator);
    return { emulator, lines };
  }

  it('is said at start, and answers the handshake 500 without running $connect', async () => {
    const { emulator, lines } = await start(fixtureWith((resources) => delete resources.ConnectPermission));
    expect(lines.find((line) => line.includes('"route_not_invocable"'))).toContain('"routeKey":"$connect"');
    await expect(TestClient.connect(emulator.url)).rejects.toThrow(/HTTP 500/);
    expect(lines.find((line) => line.includes('"integration_not_permitted"'))).toContain('Invalid permissions on Lambda function');
    expect(emulator.functionStats()['cloudsocket-fixture-connect']!.invocations).toBe(0);
  });

  it('gets a client "Internal server error" for each frame, keeps the connection, and never runs the function', async () => {
    const { emulator } = await start(fixtureWith((resources) => delete resources.EchoPermission));
    const client = await TestClient.connect(emulator.url);
    client.send({ action: 'shout' });
    expect(await client.next()).toMatchObject({ message: 'Internal server error', connectionId: expect.any(String), requestId: expect.any(String) });
    expect(client.socketOpen()).toBe(true);
    const stats = emulator.functionStats();
    expect([stats['cloudsocket-fixture-connect']!.invocations, stats['cloudsocket-fixture-echo']!.invocations]).toEqual([1, 0]);
    await client.close();
  });

  it('is $disconnect: the socket closes, and the function is never told', async () => {
    const { emulator, lines } = await start(fixtureWith((resources) => delete resources.DisconnectIntegration.Properties.CredentialsArn));
    const client = await TestClient.connect(emulator.url);
    await client.close();
    await expect.poll(() => lines.some((line) => line.includes('"integration_not_permitted"') && line.includes('"routeKey":"$disconnect"'))).toBe(true);
    expect(emulator.functionStats()['cloudsocket-fixture-disconnect']!.invocations).toBe(0);
  });
});
