import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { palette, safeText, wantsColour } from '../scripts/chat-format.js';
import { freePort } from '../scripts/run-artifact.js';
import { ChatProcess } from './support/chat-process.js';
import { TestClient, uniqueName, withQuery, withTimeout } from './support/client.js';
import { openCuttableLink } from './support/cuttable-link.js';
import { startAwsEmulator } from './support/emulator.js';
import { untilPresent } from './support/presence.js';
import { startSourceServer } from './support/servers.js';

interface RunningTarget {
  url: string;
  port: number;
  stop(): Promise<unknown>;
}

interface Target {
  name: string;
  /** Starts the target; on `port` when given, so clients find it again after a restart. */
  start(port?: number): Promise<RunningTarget>;
}

const targets: Target[] = [
  { name: 'the CloudBase target', start: (port = 0) => startSourceServer({ PORT: String(port) }) },
  { name: 'the AWS emulator', start: (port = 0) => startAwsEmulator({ port }) },
];

const processes: ChatProcess[] = [];
const cleanups: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const process of processes.splice(0)) process.kill();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

function chat(args: string[], env: Record<string, string> = {}): ChatProcess {
  const process = ChatProcess.start(args, env);
  processes.push(process);
  return process;
}

function exitCode(process: ChatProcess, timeoutMs = 15_000): Promise<number | null> {
  return withTimeout(process.exited, timeoutMs, 'exit of the chat client');
}

const escapes = (text: string) => text.includes('\x1b');

/** stderr as its lines, once the process has exited. */
function errorLines(process: ChatProcess): string[] {
  return process.stderr.join('').trim().split('\n');
}

describe.each(targets)('cloudsocket chat against $name', (target) => {
  async function start(port?: number): Promise<RunningTarget> {
    const running = await target.start(port);
    cleanups.push(() => running.stop());
    return running;
  }

  it('chats, lists users, sends and receives private messages, pings and leaves with /quit', async () => {
    const server = await start();
    const alice = uniqueName('alice');
    const bob = uniqueName('bob');
    const cli = chat([server.url, alice]);
    await cli.line(new RegExp(`Welcome to lobby, ${alice}!`));

    const { client: peer } = await TestClient.join(withQuery(server.url, { clientId: bob }));
    await cli.line(new RegExp(`${bob} joined lobby`));

    cli.write('hello from the terminal');
    expect(await peer.next('chat')).toMatchObject({ clientId: alice, message: 'hello from the terminal' });
    expect(await cli.line(/hello from the terminal/)).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d ${alice}: hello from the terminal$`));

    peer.send({ type: 'chat', content: 'hi \x1b[2Jthere' });
    // The escape sequence arrives defused: it cannot clear the reader's screen.
    expect(await cli.line(new RegExp(`${bob}: hi`))).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d ${bob}: hi \ufffd\\[2Jthere$`));

    cli.write('/users');
    expect(await cli.line(/\* in lobby/)).toContain(`in lobby (2): ${[alice, bob].sort().join(', ')}`);

    cli.write(`/msg ${bob} just between us`);
    expect(await peer.next('private')).toMatchObject({ clientId: alice, to: bob, message: 'just between us' });
    await cli.line(new RegExp(`\\[private to ${bob}\\] just between us`));
    peer.send({ type: 'private', to: alice, content: 'sure' });
    await cli.line(new RegExp(`\\[private from ${bob}\\] sure`));

    cli.write('/msg nobody_here hello?');
    await cli.line(/! no connected client "nobody_here" \(recipient_not_found\)/);

    cli.write('/ping');
    await cli.line(/\* pong in \d+ ms$/);

    cli.write('/quit');
    expect(await exitCode(cli)).toBe(0);
    expect(await peer.next('user_left')).toMatchObject({ clientId: alice });
    // stdout is a pipe here: plain text, no colour codes.
    expect(cli.lines.some(escapes)).toBe(false);
    await peer.close();
  });

  it('reconnects by itself after the server restarts, as the same clientId in the same room', async () => {
    const first = await start();
    const carol = uniqueName('carol');
    const cli = chat([first.url, carol, '--room', 'den', '--reconnect-delay', '0.1', '--reconnect-attempts', '30']);
    await cli.line(new RegExp(`Welcome to den, ${carol}!`));
    cli.write('/join attic');
    await cli.line(new RegExp(`Welcome to attic, ${carol}!`));

    await first.stop();
    // 1012 from the CloudBase target, 1001 from API Gateway: both mean "come back".
    await cli.line(/! connection lost \(10(01|12) [^)]+\); reconnecting in 0\.\d s, attempt 1 of 30/);
    const second = await start(first.port);
    const { client: listener } = await TestClient.join(withQuery(second.url, { room: 'attic' }));
    await untilPresent(listener, carol);
    cli.write('still here');
    expect(await listener.next('chat')).toMatchObject({ clientId: carol, room: 'attic', message: 'still here' });
    cli.endInput();
    expect(await exitCode(cli)).toBe(0);
    await listener.close();
  });

  it('resumes after its connection is cut, printing the messages missed once and in order, then a resumed line', async () => {
    const server = await start();
    const link = await openCuttableLink(server.port);
    cleanups.push(() => link.close());
    const pia = uniqueName('pia');
    const quinn = uniqueName('quinn');
    const cli = chat([link.url(server.url), pia, '--reconnect-delay', '0.1', '--reconnect-attempts', '30']);
    await cli.line(new RegExp(`Welcome to lobby, ${pia}!`));
    const { client: peer } = await TestClient.join(withQuery(server.url, { clientId: quinn }));
    await cli.line(new RegExp(`${quinn} joined lobby`));

    link.hold();
    link.cut();
    await cli.line(/! connection lost \(1006\); reconnecting in/);
    for (const n of [1, 2, 3]) peer.send({ type: 'chat', content: `missed ${n}` });
    // Each echo to the sender comes after the frame went into the room's log.
    const echoes = [];
    for (let n = 0; n < 3; n++) echoes.push(await peer.next('chat', 10_000));
    // The room's order is its seqs' (on AWS the three frames run as concurrent invocations and may be numbered in any order).
    const roomOrder = echoes.sort((a, b) => (a.seq as number) - (b.seq as number)).map((frame) => frame.message as string);
    link.release();

    await cli.line(new RegExp(`\\* resumed as ${pia} in lobby: 3 missed messages above$`));
    peer.send({ type: 'chat', content: 'after the resume' });
    await cli.line(new RegExp(`${quinn}: after the resume$`));
    const said = cli.lines.flatMap((line) => (line.includes(`${quinn}: `) ? [line.slice(line.indexOf(`${quinn}: `) + quinn.length + 2)] : []));
    expect(said).toEqual([...roomOrder, 'after the resume']);
    const resumedAt = cli.lines.findIndex((line) => line.includes('* resumed as'));
    expect(cli.lines.findIndex((line) => line.endsWith(`${quinn}: ${roomOrder[2]}`))).toBeLessThan(resumedAt);
    // Resumed, not welcomed afresh.
    expect(cli.lines.filter((line) => line.includes(`Welcome to lobby, ${pia}!`))).toHaveLength(1);
    cli.endInput();
    expect(await exitCode(cli)).toBe(0);
    await peer.close();
  });

  it('reads a script from stdin, sends every line once connected, and exits 0 when it ends', async () => {
    const server = await start();
    const { client: peer } = await TestClient.join(server.url);
    const dave = uniqueName('dave');
    const cli = chat([server.url, dave]);
    // Written and closed before the connection is even up: nothing may be lost.
    cli.write('first line');
    cli.write('//second, with a slash');
    cli.endInput();
    // Sent in order; on API Gateway each frame is its own Lambda invocation, so they may be broadcast in either order.
    // A loaded machine makes the emulated Lambda path slow; the wait is for the event, not a fixed pause.
    const received = [await peer.next('chat', 15_000), await peer.next('chat', 15_000)];
    expect(received.map((frame) => frame.clientId)).toEqual([dave, dave]);
    expect(received.map((frame) => frame.message).sort()).toEqual(['/second, with a slash', 'first line']);
    expect(await exitCode(cli)).toBe(0);
    expect(await peer.next('user_left')).toMatchObject({ clientId: dave });
    await peer.close();
  });

  it('sends a piped line that follows /join only once the new room has welcomed it, so it is said there', async () => {
    const server = await start();
    const attic = uniqueName('attic');
    const { client: below } = await TestClient.join(server.url);
    const { client: above } = await TestClient.join(withQuery(server.url, { room: attic }));
    const erin = uniqueName('erin');
    const cli = chat([server.url, erin]);
    cli.write('downstairs');
    cli.write(`/join ${attic}`);
    cli.write('upstairs');
    cli.endInput();
    expect(await above.next('chat', 15_000)).toMatchObject({ clientId: erin, message: 'upstairs', room: attic });
    expect(await exitCode(cli)).toBe(0);
    expect(below.all('chat').map((frame) => frame.message)).not.toContain('upstairs');
    await Promise.all([below.close(), above.close()]);
  });

  it('does not send a line too long for one frame (which would close the connection with 1009), says so, and sends the next', async () => {
    const server = await start();
    const { client: peer } = await TestClient.join(server.url);
    const fay = uniqueName('fay');
    const cli = chat([server.url, fay]);
    cli.write('x'.repeat(40 * 1024));
    cli.write('short one');
    cli.endInput();
    expect(await cli.line(/not sent: a line of 40960 bytes is more than one frame carries/)).toBeTruthy();
    expect(await peer.next('chat', 15_000)).toMatchObject({ clientId: fay, message: 'short one' });
    expect(await exitCode(cli)).toBe(0);
    expect(peer.all('chat')).toHaveLength(1);
    await peer.close();
  });

  it('leaves cleanly on Ctrl+C (SIGINT) with exit code 0', async () => {
    const server = await start();
    const { client: peer } = await TestClient.join(server.url);
    const erin = uniqueName('erin');
    const cli = chat([server.url, erin]);
    await cli.line(new RegExp(`Welcome to lobby, ${erin}!`));
    cli.child.kill('SIGINT');
    expect(await exitCode(cli)).toBe(0);
    expect(await peer.next('user_left')).toMatchObject({ clientId: erin });
    await peer.close();
  });
});

describe('cloudsocket chat arguments and endings', () => {
  it.each([
    [['ws://127.0.0.1:9/', '--reconnect-attempts', 'many'], '--reconnect-attempts'],
    [['ws://127.0.0.1:9/', '--reconnect-delay', '0'], '--reconnect-delay'],
    [['ws://127.0.0.1:9/', '--room', 'no spaces'], '--room'],
    [['ws://127.0.0.1:9/', '--colour'], '--colour'],
    [['ws://127.0.0.1:9/', 'not valid!'], 'clientId'],
    [['ftp://127.0.0.1:9/'], 'URL'],
    [[], 'URL'],
  ])('%j exits 2 with one line naming %s', async (args, named) => {
    const cli = chat(args);
    expect(await exitCode(cli)).toBe(2);
    const stderr = cli.stderr.join('').trim();
    expect(stderr.split('\n')).toHaveLength(1);
    expect(stderr).toContain(named);
    expect(stderr).not.toMatch(/\bat .*\.ts:\d+/);
  });

  it('gives up with exit code 1 when the server stays unreachable', async () => {
    const port = await freePort();
    const cli = chat([`ws://127.0.0.1:${port}/`, '--reconnect-delay', '0.01', '--reconnect-attempts', '2']);
    await cli.line(/attempt 2 of 2/);
    await cli.line(/! gave up reconnecting/);
    expect(await exitCode(cli)).toBe(1);
  });

  it('piped lines that could not be sent to a server refusing the connection: exit 1, one line saying so', async () => {
    const port = await freePort();
    const cli = chat([`ws://127.0.0.1:${port}/`, '--reconnect-attempts', '0']);
    cli.write('hello');
    cli.write('/users');
    cli.endInput();
    expect(await exitCode(cli)).toBe(1);
    expect(errorLines(cli)).toEqual(['cloudsocket: 2 lines from stdin were not sent: the connection ended (1006) first']);
  });

  it('piped lines still waiting when the server closes normally before its welcome: exit 1, one line saying so', async () => {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    server.on('connection', (socket) => socket.close(1000, 'maintenance'));
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as { port: number };
    const cli = chat([`ws://127.0.0.1:${port}/`]);
    cli.write('hello');
    cli.endInput();
    expect(await exitCode(cli)).toBe(1);
    expect(errorLines(cli)).toEqual(['cloudsocket: 1 line from stdin was not sent: the connection ended (1000 maintenance) first']);
    expect(cli.lines.at(-1)).toMatch(/\* disconnected \(1000 maintenance\)$/);
  });

  it('a piped script that ends with /quit owes nothing after it and exits 0 with nothing on stderr', async () => {
    const port = await freePort();
    const cli = chat([`ws://127.0.0.1:${port}/`, '--reconnect-attempts', '0']);
    cli.write('/help');
    cli.write('/quit');
    cli.write('never meant to go out');
    cli.endInput();
    expect(await exitCode(cli)).toBe(0);
    expect(cli.stderr.join('')).toBe('');
  });
});

describe('chat output formatting', () => {
  it('uses colour only on a terminal without NO_COLOR or --no-color', () => {
    expect(wantsColour(false, {}, true)).toBe(true);
    expect(wantsColour(false, {}, false)).toBe(false);
    expect(wantsColour(false, { NO_COLOR: '1' }, true)).toBe(false);
    expect(wantsColour(false, { NO_COLOR: '' }, true)).toBe(true);
    expect(wantsColour(true, {}, true)).toBe(false);
    expect(palette(true).red('x')).toBe('\x1b[31mx\x1b[39m');
    expect(palette(false).red('x')).toBe('x');
  });

  it('defuses control characters and indents continuation lines', () => {
    expect(safeText('a\x1b]0;pwned\x07b\u009bc')).toBe('a\ufffd]0;pwned\ufffdb\ufffdc');
    expect(safeText('one\ntwo\tthree')).toBe('one\n  two\tthree');
  });
});
