/**
 * `cloudsocket chat` against a server that answers the handshake with an HTTP
 * error: it prints the status and the body, and gives up at once on 401/403
 * (the credentials decide) while a 5xx or an unreachable server is retried.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../scripts/run-artifact.js';
import { ChatProcess } from './support/chat-process.js';
import { withTimeout } from './support/client.js';
import { startAwsEmulator } from './support/emulator.js';
import { startSourceServer } from './support/servers.js';

const processes: ChatProcess[] = [];
const cleanups: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const process of processes.splice(0)) process.kill();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

/** stdin stays open (a script still writing), so only the server's answer ends the session. */
function chat(args: string[]): ChatProcess {
  const process = ChatProcess.start(args);
  processes.push(process);
  return process;
}

const exitCode = (process: ChatProcess) => withTimeout(process.exited, 15_000, 'exit of the chat client');

const targets = [
  { name: 'the CloudBase target', start: () => startSourceServer({ AUTH_TOKEN: 'right-token' }) },
  { name: 'the AWS emulator', start: () => startAwsEmulator({ functionEnv: { AUTH_TOKEN: 'right-token' } }) },
];

describe.each(targets)('a 401 from $name', (target) => {
  it('is printed with its status and body, and not retried', async () => {
    const server = await target.start();
    cleanups.push(() => server.stop());
    const cli = chat([`${server.url}?token=wrong-token`, 'refused_a', '--reconnect-delay', '0.01']);
    const refused = await cli.line(/the server refused the connection/);
    expect(refused).toMatch(/\(HTTP 401 Unauthorized: .+\); not retrying/);
    expect(await exitCode(cli)).toBe(1);
    expect(cli.lines.filter((line) => /reconnect/.test(line))).toEqual([]);
  });
});

/** A server that answers every WebSocket handshake with `status` and a JSON body, counting them. */
async function refusingServer(status: number): Promise<{ url: string; handshakes: () => number }> {
  let handshakes = 0;
  const body = JSON.stringify({ code: `status_${status}`, message: 'refused by the test server' });
  const server: Server = createServer();
  server.on('upgrade', (_request, socket) => {
    handshakes++;
    socket.end(`HTTP/1.1 ${status} Refused\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return { url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, handshakes: () => handshakes };
}

describe('refusals that may pass', () => {
  it('a 503 is printed with its body and retried until the attempts run out', async () => {
    const server = await refusingServer(503);
    const cli = chat([server.url, 'retried_a', '--reconnect-delay', '0.01', '--reconnect-attempts', '2']);
    expect(await exitCode(cli)).toBe(1);
    expect(server.handshakes()).toBe(3);
    const refusals = cli.lines.filter((line) => line.includes('the server refused the connection (HTTP 503 Service Unavailable: {"code":"status_503","message":"refused by the test server"}); reconnecting'));
    expect(refusals).toHaveLength(2);
    expect(cli.lines.at(-1)).toMatch(/gave up reconnecting \(last close 1006 HTTP 503 Service Unavailable: /);
  });

  it.each([401, 403])('a %i is final even with attempts left', async (status) => {
    const server = await refusingServer(status);
    const cli = chat([server.url, 'final_a', '--reconnect-delay', '0.01', '--reconnect-attempts', '5']);
    expect(await exitCode(cli)).toBe(1);
    expect(server.handshakes()).toBe(1);
    expect(cli.lines.at(-1)).toContain(`the server refused the connection (HTTP ${status} `);
  });

  it('a server nobody listens for is still retried as a lost connection', async () => {
    const port = await freePort();
    const cli = chat([`ws://127.0.0.1:${port}/`, 'nobody_a', '--reconnect-delay', '0.01', '--reconnect-attempts', '2']);
    expect(await exitCode(cli)).toBe(1);
    expect(cli.lines.filter((line) => line.includes('connection lost (1006'))).toHaveLength(2);
    expect(cli.lines.some((line) => line.includes('refused'))).toBe(false);
  });
});
