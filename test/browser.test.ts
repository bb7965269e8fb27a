/**
 * The chat page in a real Chromium (Debian's, at /usr/bin/chromium; .ci/run
 * installs it), driven the way a person uses it.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { packageRoot as projectRoot } from '../scripts/package-root.js';
import { loadPage } from '../scripts/page.js';
import { ChatProcess } from './support/chat-process.js';
import { TestClient, uniqueName, withQuery } from './support/client.js';
import { openCuttableLink } from './support/cuttable-link.js';
import { startAwsEmulator } from './support/emulator.js';
import { untilPresent } from './support/presence.js';
import { startRedisServer } from './support/redis.js';
import { startArtifactServer, startSourceServer } from './support/servers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(projectRoot, 'test-artifacts');

interface RunningTarget {
  /** Where the page is served. */
  pageUrl: string;
  /** The WebSocket URL the page should fill in by itself. */
  socketUrl: string;
  port: number;
  stop(): Promise<unknown>;
}

interface Target {
  name: string;
  start(port?: number): Promise<RunningTarget>;
}

const targets: Target[] = [
  {
    // The built zip, unpacked and started through scf_bootstrap: the page is the one the build wrote.
    name: 'the CloudBase target (built artifact)',
    start: async () => {
      const server = await startArtifactServer();
      return { pageUrl: server.url.replace(/^ws/, 'http'), socketUrl: server.url, port: server.running.port, stop: () => server.stop() };
    },
  },
  {
    name: 'the AWS emulator',
    start: async (port = 0) => {
      const emulator = await startAwsEmulator({ port });
      return { pageUrl: `${emulator.httpUrl}/`, socketUrl: emulator.url, port: emulator.port, stop: () => emulator.stop() };
    },
  },
];

/** The CloudBase target from source, restartable on the same port. */
const restartable: Target = {
  name: 'the CloudBase target',
  start: async (port = 0) => {
    const server = await startSourceServer({ PORT: String(port) });
    return { pageUrl: server.url.replace(/^ws/, 'http'), socketUrl: server.url, port: server.port, stop: () => server.stop() };
  },
};

let browser: Browser;
const contexts: BrowserContext[] = [];
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not at ${CHROMIUM}; install it with \`apt-get install -y chromium\` (.ci/run does this) — the browser tests do not run without it`);
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
});

afterAll(async () => {
  await browser?.close();
});

afterEach(async () => {
  for (const context of contexts.splice(0)) await context.close();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

async function start(target: Target, port?: number): Promise<RunningTarget> {
  const running = await target.start(port);
  cleanups.push(() => running.stop());
  return running;
}

async function openPage(url: string, viewport = { width: 1100, height: 720 }): Promise<Page> {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  contexts.push(context);
  // Every Content-Security-Policy refusal on the page, from its first moment.
  await context.addInitScript(() => {
    const refused: string[] = [];
    (window as { __refused?: string[] }).__refused = refused;
    document.addEventListener('securitypolicyviolation', (event) => refused.push(`${event.effectiveDirective} ${event.blockedURI}`));
  });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  await page.goto(url);
  return page;
}

async function connectAs(page: Page, clientId: string, room?: string): Promise<void> {
  await page.fill('#clientId', clientId);
  if (room) await page.fill('#room', room);
  await page.click('#connect');
  await page.locator('#status[data-status="open"]').waitFor();
  await message(page, 'li.system', `Welcome to ${room ?? 'lobby'}, ${clientId}!`).waitFor();
}

function message(page: Page, selector: string, text: string) {
  return page.locator(`#messages ${selector}`, { hasText: text }).last();
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

/** The built page written to a file of its own temp dir, for opening from disk. */
async function pageOnDisk(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'cloudsocket-page-'));
  cleanups.push(() => rm(directory, { recursive: true, force: true }));
  const file = join(directory, 'chat.html');
  await writeFile(file, await loadPage());
  return pathToFileURL(file).href;
}

const refusals = (page: Page) => page.evaluate(() => [...((window as { __refused?: string[] }).__refused ?? [])]);

/**
 * The page's policy is in force: nothing the page itself does was refused,
 * and a script injected into it (as an XSS would) does not run.
 */
async function expectPolicyEnforced(page: Page): Promise<void> {
  expect(await refusals(page)).toEqual([]);
  expect(
    await page.evaluate(() => {
      const script = document.createElement('script');
      script.textContent = '(window).__injected = true';
      document.body.append(script);
      return (window as { __injected?: boolean }).__injected ?? false;
    }),
  ).toBe(false);
  await page.waitForFunction(() => ((window as { __refused?: string[] }).__refused ?? []).length > 0);
  // Once per policy in force: the header's and the meta tag's when served, the meta tag's from disk.
  expect(new Set(await refusals(page))).toEqual(new Set(['script-src-elem inline']));
}

/**
 * Where each character of `text` (found in one text node under `selector`) is
 * drawn, left edge in px, in the order the characters are stored: rising
 * means left to right.
 */
async function charPositions(page: Page, selector: string, text: string): Promise<number[]> {
  return page.locator(selector).evaluate((root, wanted) => {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const start = node.textContent!.indexOf(wanted);
      if (start < 0) continue;
      return Array.from(wanted, (_char, i) => {
        const range = document.createRange();
        range.setStart(node!, start + i);
        range.setEnd(node!, start + i + 1);
        return range.getBoundingClientRect().left;
      });
    }
    throw new Error(`no text node holds ${wanted}`);
  }, text);
}

const rising = (xs: number[]) => xs.every((x, i) => i === 0 || x > xs[i - 1]!);
const falling = (xs: number[]) => xs.every((x, i) => i === 0 || x < xs[i - 1]!);

describe.each(targets)('the chat page served by $name', (target) => {
  it('comes with its security headers, and its policy lets the page chat and refuses injected script', async () => {
    const server = await start(target);
    const page = await openPage(server.pageUrl);
    const response = await page.reload();
    const headers = response!.headers();
    expect(headers['x-content-type-options']).toBe('nosniff');
    expect(headers['x-frame-options']).toBe('DENY');
    const policy = headers['content-security-policy']!;
    expect(policy).toMatch(/^default-src 'none'; script-src 'sha256-[\w+/]+=*'; style-src 'sha256-[\w+/]+=*'; connect-src ws: wss:;/);
    expect(policy).toContain("frame-ancestors 'none'");
    expect(policy).not.toContain('unsafe-inline');
    // The same policy inside the page, for a copy opened from disk.
    const meta = await page.getAttribute('meta[http-equiv="Content-Security-Policy"]', 'content');
    expect(`${meta}; frame-ancestors 'none'`).toBe(policy);

    const { client: peer } = await TestClient.join(server.socketUrl);
    const kim = uniqueName('kim');
    await connectAs(page, kim);
    await say(page, 'styled and scripted');
    expect(await peer.next('chat')).toMatchObject({ clientId: kim, message: 'styled and scripted' });
    // The stylesheet applied: own messages are pushed to the right.
    expect(await message(page, 'li.own', 'styled and scripted').evaluate((item) => getComputedStyle(item).alignSelf)).toBe('flex-end');
    await expectPolicyEnforced(page);
    await peer.close();
  });

  it('fills in its own server, and two pages chat, see each other, ping, and talk in private', async () => {
    const server = await start(target);
    const alice = uniqueName('alice');
    const bob = uniqueName('bob');
    const pageA = await openPage(server.pageUrl);
    expect(await pageA.inputValue('#url')).toBe(server.socketUrl);
    const pageB = await openPage(server.pageUrl);
    await connectAs(pageA, alice);
    await connectAs(pageB, bob);
    await message(pageA, 'li.system', `${bob} joined lobby`).waitFor();

    await say(pageA, 'hello bob');
    const received = message(pageB, 'li.others', 'hello bob');
    await received.waitFor();
    expect(await received.locator('.from').textContent()).toBe(alice);
    await message(pageA, 'li.own', 'hello bob').waitFor();
    expect(await pageB.textContent('#online')).toBe('2');
    await pageA.locator('#users button', { hasText: bob }).waitFor();
    await pageB.locator('#users button.me', { hasText: bob }).waitFor();

    // A private message, picked from the user list; a third party must not see it.
    const { client: carol } = await TestClient.join(withQuery(server.socketUrl, { clientId: uniqueName('carol') }));
    await pageA.click(`#users button:has-text("${bob}")`);
    expect(await pageA.inputValue('#recipient')).toBe(bob);
    await say(pageA, 'just for you');
    await message(pageB, 'li.private.others', 'just for you').waitFor();
    await message(pageA, 'li.private.own', `private to ${bob}`).waitFor();
    await pageA.selectOption('#recipient', '');
    await say(pageA, 'for everyone again');
    expect(await carol.next('chat')).toMatchObject({ message: 'for everyone again' });
    expect(carol.all('private')).toEqual([]);
    await carol.close();

    await pageB.click('#ping');
    await message(pageB, 'li.system', 'Pong in').waitFor();
    expect(await pageB.textContent('#rtt')).toMatch(/\d+ ms/);

    await pageA.click('#connect');
    await pageA.locator('#status[data-status="closed"]').waitFor();
    await message(pageB, 'li.system', `${alice} left lobby`).waitFor();
  });

  it('talks with the terminal client both ways', async () => {
    const server = await start(target);
    const ivy = uniqueName('ivy');
    const jon = uniqueName('jon');
    const terminal = ChatProcess.start([server.socketUrl, jon]);
    cleanups.push(async () => terminal.kill());
    await terminal.line(new RegExp(`Welcome to lobby, ${jon}!`));
    const page = await openPage(server.pageUrl);
    await connectAs(page, ivy);
    await terminal.line(new RegExp(`${ivy} joined lobby`));

    await say(page, 'hi from the browser');
    await terminal.line(new RegExp(`${ivy}: hi from the browser$`));
    terminal.write('hi from the terminal');
    await message(page, 'li.others', 'hi from the terminal').waitFor();
    terminal.write(`/msg ${ivy} a private word`);
    await message(page, 'li.private.others', 'a private word').waitFor();
    terminal.write('/quit');
    expect(await terminal.exited).toBe(0);
    await message(page, 'li.system', `${jon} left lobby`).waitFor();
  });

  it('shows an HTML payload as text and never runs it', async () => {
    const server = await start(target);
    const payload = '<img src=x onerror="window.__xss=(window.__xss||0)+1"><script>window.__xss=1</script><b>bold?</b>';
    const pageA = await openPage(server.pageUrl);
    const pageB = await openPage(server.pageUrl);
    await connectAs(pageA, uniqueName('mallory'));
    await connectAs(pageB, uniqueName('victim'));

    await say(pageA, payload);
    const shown = message(pageB, 'li.others', 'onerror');
    await shown.waitFor();
    expect(await shown.locator('.text').textContent()).toBe(payload);
    await message(pageA, 'li.own', 'onerror').waitFor();
    for (const page of [pageA, pageB]) {
      expect(await page.locator('#messages img, #messages script, #messages b').count()).toBe(0);
      expect(await page.evaluate(() => (window as { __xss?: number }).__xss)).toBeUndefined();
    }
  });
});

describe.each([restartable, targets[1]!])('the chat page with $name', (target) => {
  it('reconnects by itself after the server restarts, as the same clientId in the same room', async () => {
    const first = await start(target);
    const frank = uniqueName('frank');
    const page = await openPage(`${first.pageUrl}?reconnectDelay=0.2&reconnectAttempts=30`);
    await connectAs(page, frank, 'den');
    await say(page, '/join attic');
    await message(page, 'li.system', `Welcome to attic, ${frank}!`).waitFor();

    await first.stop();
    // 1012 from the CloudBase target, 1001 from API Gateway: both mean "come back".
    await page.locator('#messages li.system', { hasText: /^Connection lost \(10(01|12) [^)]+\); reconnecting in/ }).waitFor();
    const second = await start(target, first.port);
    const { client: listener } = await TestClient.join(withQuery(second.socketUrl, { room: 'attic' }));
    await untilPresent(listener, frank);
    await page.locator('#status[data-status="open"]').waitFor();
    // Resumed where the room's log outlived the restart (the emulator's DynamoDB), welcomed afresh where it did not (a memory log).
    const welcomedAgain = page.locator('#messages li.system', { hasText: `Welcome to attic, ${frank}!` }).nth(1);
    const resumed = page.locator('#messages li.system', { hasText: /^Resumed: / });
    await welcomedAgain.or(resumed).first().waitFor();
    await say(page, 'made it back');
    expect(await listener.next('chat')).toMatchObject({ clientId: frank, room: 'attic', message: 'made it back' });
    await listener.close();
  });
});

describe.each([
  { name: 'served by the CloudBase target (built artifact)', target: targets[0]!, fromDisk: false },
  { name: 'served by the AWS emulator', target: targets[1]!, fromDisk: false },
  { name: 'opened from disk, with the CloudBase target', target: restartable, fromDisk: true },
])('the chat page $name', ({ target, fromDisk }) => {
  it('resumes after its connection is cut while another client chats, showing each missed message once, in order', async () => {
    const server = await start(target);
    const link = await openCuttableLink(server.port);
    cleanups.push(() => link.close());
    const query = `?url=${encodeURIComponent(link.url(server.socketUrl))}&reconnectDelay=0.2&reconnectAttempts=30`;
    const page = await openPage(`${fromDisk ? await pageOnDisk() : server.pageUrl}${query}`);
    const nina = uniqueName('nina');
    const omar = uniqueName('omar');
    await connectAs(page, nina);
    const { client: peer } = await TestClient.join(withQuery(server.socketUrl, { clientId: omar }));
    await message(page, 'li.system', `${omar} joined lobby`).waitFor();
    peer.send({ type: 'chat', content: 'before the cut' });
    await peer.next('chat', 10_000);
    await message(page, 'li.others', 'before the cut').waitFor();

    link.hold();
    link.cut();
    await page.locator('#messages li.system', { hasText: /^Connection lost \(1006\); reconnecting in/ }).waitFor();
    const missed = ['missed 1', 'missed 2', 'missed 3', 'missed 4'];
    for (const content of missed) peer.send({ type: 'chat', content });
    // Each echo to the sender comes after the frame went into the room's log.
    const echoes = [];
    for (const _ of missed) echoes.push(await peer.next('chat', 10_000));
    // The room's order is its seqs' (on AWS the frames run as concurrent invocations and may be numbered in any order).
    const roomOrder = echoes.sort((a, b) => (a.seq as number) - (b.seq as number)).map((frame) => frame.message as string);
    link.release();

    await message(page, 'li.system', 'Resumed: 4 missed messages shown').waitFor();
    peer.send({ type: 'chat', content: 'after the resume' });
    await message(page, 'li.others', 'after the resume').waitFor();
    const shown = page.locator('#messages li.others');
    expect(await shown.locator('.text').allTextContents()).toEqual(['before the cut', ...roomOrder, 'after the resume']);
    const seqs = (await shown.evaluateAll((items) => items.map((item) => (item as HTMLElement).dataset.seq))).map(Number);
    expect(seqs.every((seq, i) => Number.isInteger(seq) && (i === 0 || seq > seqs[i - 1]!))).toBe(true);
    // Resumed, not welcomed afresh: the same person, one welcome.
    expect(await page.locator('#messages li.system', { hasText: `Welcome to lobby, ${nina}!` }).count()).toBe(1);
    expect(await page.inputValue('#clientId')).toBe(nina);
    expect(await refusals(page)).toEqual([]);
    await peer.close();
  });
});

describe('the chat page on two CloudBase instances sharing a Redis', () => {
  it('resumes after its instance restarts, showing once and in order what was said on the other instance meanwhile', async () => {
    const redis = await startRedisServer();
    cleanups.push(() => redis.stop());
    // Both instances are one build, so they share the resume secret the build wrote, as a deployment's instances do.
    const env = { REDIS_URL: redis.url, REDIS_PREFIX: `page${Date.now()}:` };
    const a = await startArtifactServer(env);
    const b = await startArtifactServer(env);
    cleanups.push(() => b.stop());
    const page = await openPage(`${a.url.replace(/^ws/, 'http')}?reconnectDelay=0.2&reconnectAttempts=30`);
    const nina = uniqueName('nina');
    const omar = uniqueName('omar');
    await connectAs(page, nina);
    const { client: peer } = await TestClient.join(withQuery(b.url, { clientId: omar }));
    await message(page, 'li.system', `${omar} joined lobby`).waitFor();

    await a.stop('SIGTERM');
    await page.locator('#messages li.system', { hasText: /^Connection lost \(1012/ }).waitFor();
    const missed = ['missed 1', 'missed 2', 'missed 3'];
    for (const content of missed) peer.send({ type: 'chat', content });
    const echoes = [];
    for (const _ of missed) echoes.push(await peer.next('chat', 10_000));
    const roomOrder = echoes.sort((x, y) => (x.seq as number) - (y.seq as number)).map((frame) => frame.message as string);
    // The same instance comes back on the same port, its memory empty: what it replays comes from Redis.
    const again = await startArtifactServer(env, a.running.port);
    cleanups.push(() => again.stop());

    // The chats only: the user_left the draining instance told the room of is not the page's to see.
    await message(page, 'li.system', `Resumed: ${missed.length} missed messages shown`).waitFor();
    peer.send({ type: 'chat', content: 'after the resume' });
    await message(page, 'li.others', 'after the resume').waitFor();
    expect(await page.locator('#messages li.others .text').allTextContents()).toEqual([...roomOrder, 'after the resume']);
    expect(await page.locator('#messages li.system', { hasText: `${nina} left` }).count()).toBe(0);
    expect(await page.inputValue('#clientId')).toBe(nina);
    await peer.close();
  });
});

describe('the chat page', () => {
  it('places messages by seq, whatever order they arrive in, and never shows one twice', async () => {
    // A scripted server: it sends what no real one can be made to on cue, frames that overtook each other and a repeat.
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => new Promise((resolve) => wss.close(resolve)));
    await new Promise((resolve) => wss.once('listening', resolve));
    const { port } = wss.address() as { port: number };
    const at = new Date().toISOString();
    const chat = (seq: number) => JSON.stringify({ type: 'chat', id: `m${seq}`, clientId: 'pat', room: 'lobby', message: `number ${seq}`, onlineCount: 2, seq, timestamp: at });
    wss.on('connection', (socket) => {
      socket.send(JSON.stringify({ type: 'welcome', clientId: 'lee', room: 'lobby', message: 'Welcome to lobby, lee!', onlineCount: 2, seq: 4, resumeToken: 't', timestamp: at }));
      socket.on('message', (data) => {
        if (JSON.parse(String(data)).type !== 'chat') return;
        for (const seq of [5, 8, 7, 8, 6, 5]) socket.send(chat(seq));
        socket.send(JSON.stringify({ type: 'user_left', clientId: 'kay', room: 'lobby', message: 'kay left lobby', onlineCount: 2, seq: 9, timestamp: at }));
      });
    });
    const page = await openPage(`${await pageOnDisk()}?url=${encodeURIComponent(`ws://127.0.0.1:${port}/`)}`);
    await connectAs(page, 'lee');
    await say(page, 'go');
    await message(page, 'li.system', 'kay left lobby').waitFor();
    expect(await page.locator('#messages li[data-seq]').evaluateAll((items) => items.map((item) => item.textContent))).toEqual([
      ...[5, 6, 7, 8].map((seq) => expect.stringContaining(`number ${seq}`)),
      'kay left lobby',
    ]);
  });

  it('shows that it is reconnecting, counting down, and gives up after the set attempts', async () => {
    const server = await start(restartable);
    const page = await openPage(`${server.pageUrl}?reconnectDelay=3&reconnectAttempts=1`);
    await connectAs(page, uniqueName('gina'));
    await server.stop();
    await page.locator('#status[data-status="reconnecting"]', { hasText: /^reconnecting in [1-4] s$/ }).waitFor();
    await page.locator('#status[data-status="closed"]').waitFor({ timeout: 20_000 });
    await message(page, 'li.system.error', 'Gave up reconnecting').waitFor();
    expect(await page.locator('#send').isDisabled()).toBe(true);
  });

  it('works opened from disk (file://), with the local CloudBase target as its default', async () => {
    const server = await start(restartable);
    const page = await openPage(await pageOnDisk());
    expect(await page.inputValue('#url')).toBe('ws://127.0.0.1:9000/');

    const { client: peer } = await TestClient.join(server.socketUrl);
    await page.fill('#url', server.socketUrl);
    const henry = uniqueName('henry');
    await connectAs(page, henry);
    await say(page, 'from a file');
    expect(await peer.next('chat')).toMatchObject({ clientId: henry, message: 'from a file' });
    // No server to send headers: the page's own meta policy is what protects it.
    await expectPolicyEnforced(page);
    await peer.close();
  });

  it('keeps a right-to-left override inside the message or error that carries it', async () => {
    const server = await start(restartable);
    const page = await openPage(server.pageUrl);
    await connectAs(page, uniqueName('viewer'));
    const { client: mallory } = await TestClient.join(withQuery(server.socketUrl, { clientId: uniqueName('mallory') }));
    // U+202E with no closing U+202C: everything after it would be drawn backwards.
    const spoof = '\u202Egnp.exe';
    mallory.send({ type: 'chat', content: spoof });
    mallory.send({ type: 'chat', content: 'after the override' });
    const spoofed = message(page, 'li.others', 'gnp.exe');
    await message(page, 'li.others', 'after the override').waitFor();
    expect(await spoofed.locator('.text').textContent()).toBe(spoof);

    // Within its own message the sender's override holds, as written ...
    expect(falling(await charPositions(page, '#messages li.others:nth-last-child(2) .text', 'gnp.exe'))).toBe(true);
    // ... and goes no further: not into that message's name and time, nor the next message.
    const [from, time] = await Promise.all(['.from', 'time'].map(async (part) => (await spoofed.locator(part).boundingBox())!.x));
    expect(from).toBeLessThan(time!);
    expect(rising(await charPositions(page, '#messages li.others:last-child .text', 'after the override'))).toBe(true);

    // An error that quotes the override (the name asked for) still reads its code in order.
    await say(page, '/msg \u202Eevil hi');
    await message(page, 'li.system.error', 'recipient_not_found').waitFor();
    expect(rising(await charPositions(page, '#messages li.system.error:last-child', '(recipient_not_found)'))).toBe(true);
    await mallory.close();
  });

  it('rejects a bad server URL or clientId with a message instead of connecting', async () => {
    const server = await start(restartable);
    const page = await openPage(server.pageUrl);
    await page.fill('#clientId', 'not valid!');
    await page.click('#connect');
    await message(page, 'li.system.error', 'Client ID: 1-32 letters').waitFor();
    await page.fill('#clientId', '');
    await page.fill('#url', 'http://example.com/');
    await page.click('#connect');
    await message(page, 'li.system.error', 'server URL must start with ws:// or wss://').waitFor();
    expect(await page.getAttribute('#status', 'data-status')).toBe('closed');
  });

  it('fits a 360 px wide phone screen and leaves a screenshot of a live conversation', async () => {
    // Its own server, so short readable names cannot clash.
    const server = await start(restartable);
    const desktop = await openPage(server.pageUrl, { width: 1100, height: 640 });
    const phone = await openPage(server.pageUrl, { width: 360, height: 740 });
    await connectAs(desktop, 'ana');
    await connectAs(phone, 'ben');
    const { client: chris } = await TestClient.join(withQuery(server.socketUrl, { clientId: 'chris' }));
    await message(desktop, 'li.system', 'chris joined lobby').waitFor();

    await say(desktop, 'Morning! Is the deploy to staging done?');
    await message(phone, 'li.others', 'Morning!').waitFor();
    await say(phone, 'Yes, all green. The page reconnected by itself during the restart.');
    await message(desktop, 'li.others', 'all green').waitFor();
    chris.send({ type: 'chat', content: 'Nice. <b>Markup</b> shows as text, by the way.' });
    await message(desktop, 'li.others', 'Markup').waitFor();
    await message(phone, 'li.others', 'Markup').waitFor();
    await desktop.click('#users button:has-text("ben")');
    await say(desktop, 'Lunch at 12?');
    await message(phone, 'li.private', 'Lunch at 12?').waitFor();
    await desktop.selectOption('#recipient', '');
    await desktop.click('#ping');
    await message(desktop, 'li.system', 'Pong in').waitFor();

    // Nothing wider than the phone's screen: no sideways scrolling.
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
    for (const id of ['#text', '#send', '#connect', '#url']) expect(await phone.locator(id).isVisible()).toBe(true);

    await mkdir(ARTIFACTS, { recursive: true });
    const shots = { desktop: join(ARTIFACTS, 'chat.png'), phone: join(ARTIFACTS, 'chat-phone.png') };
    await desktop.screenshot({ path: shots.desktop });
    await phone.screenshot({ path: shots.phone });
    for (const shot of Object.values(shots)) {
      const png = await readFile(shot);
      expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    }
    await chris.close();
  });
});
