/**
 * Real deploy and remove runs whose cloud API cannot be reached: the CLI as a
 * child process with made-up keys, sent through a proxy (CloudBase: the
 * manager's http_proxy) or to an endpoint (AWS: AWS_ENDPOINT_URL) on 127.0.0.1
 * that refuses, answers 502, or closes the connection without answering.
 * Nothing reaches a cloud; every run must end in one line naming the failure.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../scripts/run-artifact.js';
import { errorLines, useDeployCli, type Run } from './support/deploy-cli.js';

const cli = useDeployCli();

const TENCENT_KEYS = { TENCENTCLOUD_SECRETID: 'AKIDmadeUpForTests0000', TENCENTCLOUD_SECRETKEY: 'madeUpSecretKeyForTests' };
const AWS_KEYS = { AWS_ACCESS_KEY_ID: 'AKIAMADEUPFORTESTS00', AWS_SECRET_ACCESS_KEY: 'madeUpSecretKeyForTests', AWS_REGION: 'us-east-1', AWS_MAX_ATTEMPTS: '1' };

const servers: Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    const closed = new Promise((resolve) => server.close(resolve));
    (server as { closeAllConnections?: () => void }).closeAllConnections?.();
    await closed;
  }
});

async function listening(server: Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** Answers 502 with an empty body, both as a proxy (to CONNECT) and as a plain endpoint. */
function badGateway(): Promise<number> {
  const server = createHttpServer((request, response) => {
    request.resume();
    response.writeHead(502).end();
  });
  server.on('connect', (_request, socket) => socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n'));
  return listening(server);
}

/** Reads the request, then closes the connection without a byte of answer. */
function hangsUp(): Promise<number> {
  return listening(createNetServer((socket) => socket.once('data', () => socket.end())));
}

/** The run failed with exit code 1 and exactly `line` from the CLI: no stack, no other line. */
function expectOneLine(run: Run, line: string): void {
  expect(errorLines(run.stderr)).toEqual([line]);
  expect(run.code).toBe(1);
  expect(run.stdout).not.toMatch(/wss:\/\//);
}

// Each case runs the CLI as a child process that builds before it calls out: tens of seconds on a busy 2-core machine.
describe('deploy cloudbase when the Tencent Cloud API cannot be reached', { timeout: 90_000 }, () => {
  it('a proxy port nobody listens on: names the endpoint, the proxy and ECONNREFUSED, for deploy and remove', async () => {
    const port = await freePort();
    const env = { ...TENCENT_KEYS, http_proxy: `http://someone:proxy-password@127.0.0.1:${port}` };
    const expected = `cloudsocket: cannot reach the Tencent Cloud API (https://tcb.tencentcloudapi.com/ through proxy 127.0.0.1:${port}): connect ECONNREFUSED 127.0.0.1:${port}`;

    const deploy = await cli(['deploy', 'cloudbase', '--env', 'some-env'], env);
    expectOneLine(deploy, expected);
    // The proxy's password is not shown with it.
    expect(deploy.stderr).not.toContain('proxy-password');

    expectOneLine(await cli(['remove', 'cloudbase', '--env', 'some-env'], env), expected);
  });

  it('a proxy answering 502: names the status', async () => {
    const port = await badGateway();
    const run = await cli(['deploy', 'cloudbase', '--env', 'some-env'], { ...TENCENT_KEYS, http_proxy: `http://127.0.0.1:${port}` });
    expectOneLine(run, `cloudsocket: cannot reach the Tencent Cloud API (https://tcb.tencentcloudapi.com/ through proxy 127.0.0.1:${port}): HTTP 502 Bad Gateway`);
  });

  it('a proxy closing the connection without answering: says so instead of exiting 0 in silence', async () => {
    const port = await hangsUp();
    const run = await cli(['deploy', 'cloudbase', '--env', 'some-env'], { ...TENCENT_KEYS, http_proxy: `http://127.0.0.1:${port}` });
    expectOneLine(run, `cloudsocket: cannot reach the Tencent Cloud API (through proxy 127.0.0.1:${port}): the connection closed before any answer came`);
  });
});

describe('deploy aws when the AWS API cannot be reached', { timeout: 90_000 }, () => {
  it('an endpoint answering 502 with no AWS error: names the status', async () => {
    const port = await badGateway();
    const run = await cli(['deploy', 'aws'], { ...AWS_KEYS, AWS_ENDPOINT_URL: `http://127.0.0.1:${port}` });
    expectOneLine(run, 'cloudsocket: cannot reach the AWS API (CloudFormation DescribeStacks in us-east-1): HTTP 502, an answer that names no AWS error');
  });

  it('an endpoint closing the connection without answering: names the socket error code', async () => {
    const port = await hangsUp();
    const run = await cli(['remove', 'aws'], { ...AWS_KEYS, AWS_ENDPOINT_URL: `http://127.0.0.1:${port}` });
    expectOneLine(run, 'cloudsocket: cannot reach the AWS API (CloudFormation DescribeStacks in us-east-1): ECONNRESET: socket hang up');
  });
});
