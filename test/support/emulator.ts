/**
 * Starting the AWS emulator for tests: with the real handlers built once per
 * test file into a temp dir, or with the fixture stack of
 * test/fixtures/emulator, whose $connect asks a "gate" (an HTTP server in the
 * test) what to answer, so a test can hold a handshake open, refuse it or
 * watch every $disconnect event arrive.
 */
import { mkdtemp } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger, silentLogger, type Logger } from '../../shared/log.js';
import { buildAws } from '../../scripts/build.js';
import { startEmulator, type EmulatorOptions, type RunningEmulator } from '../../scripts/emulator/index.js';

export const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/emulator/', import.meta.url));

export function testLogger(): Logger {
  return process.env.TEST_LOGS ? createLogger('debug') : silentLogger;
}

let builtAws: Promise<string> | undefined;

/** Builds the AWS handlers once per test file into a temp dir; resolves to that dist/aws directory. */
export function buildAwsOnce(): Promise<string> {
  builtAws ??= mkdtemp(join(tmpdir(), 'cloudsocket-aws-')).then(async (out) => (await buildAws(out)).directory);
  return builtAws;
}

/** The real template and the real handlers, on a random port. */
export async function startAwsEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  return startEmulator({ port: 0, distDir: await buildAwsOnce(), logger: testLogger(), ...options });
}

export interface ConnectDecision {
  statusCode?: number;
  headers?: Record<string, string>;
  body?: string;
  throw?: boolean;
}

export interface HeldConnect {
  event: Record<string, any>;
  env: Record<string, string>;
  answer(decision: ConnectDecision): void;
}

/** An awaitable queue: `next()` resolves with the next item pushed, already queued or still to come. */
class Queue<T> {
  private readonly items: T[] = [];
  private readonly waiters: Array<(item: T) => void> = [];
  push(item: T): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(item);
    else this.items.push(item);
  }
  next(timeoutMs = 5000): Promise<T> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise((resolve, reject) => {
      const waiter = (value: T) => {
        clearTimeout(timer);
        resolve(value);
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`nothing arrived within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
}

export class Gate {
  readonly connects = new Queue<HeldConnect>();
  readonly disconnects = new Queue<Record<string, any>>();
  /** When set, every $connect gets this answer at once; when undefined, each waits in `connects` for the test. */
  autoAnswer: ConnectDecision | undefined = { statusCode: 200 };
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<Gate> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const gate = new Gate(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on('request', (req, res) => {
      let text = '';
      req.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      req.on('end', () => {
        const body = JSON.parse(text || '{}') as { event: Record<string, any>; env?: Record<string, string> };
        const answer = (decision: ConnectDecision) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(decision));
        if (req.url === '/disconnect') {
          gate.disconnects.push(body.event);
          answer({});
        } else if (gate.autoAnswer) {
          answer(gate.autoAnswer);
        } else {
          gate.connects.push({ event: body.event, env: body.env ?? {}, answer });
        }
      });
    });
    return gate;
  }

  /** Waits for the $disconnect of `connectionId`, skipping others'. */
  async disconnectOf(connectionId: string, timeoutMs = 5000): Promise<Record<string, any>> {
    for (;;) {
      const event = await this.disconnects.next(timeoutMs);
      if (event.requestContext?.connectionId === connectionId) return event;
    }
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** The fixture stack on a random port, its $connect and $disconnect reporting to `gate`. */
export function startFixtureEmulator(gate: Gate, options: EmulatorOptions = {}): Promise<RunningEmulator> {
  return startEmulator({
    port: 0,
    templatePath: join(FIXTURE_DIR, 'template.yaml'),
    distDir: join(FIXTURE_DIR, 'handlers'),
    logger: testLogger(),
    ...options,
    functionEnv: { GATE_URL: gate.url, ...options.functionEnv },
  });
}

/** What Lambda would give a handler run from source against `emulator`: its region, endpoints, the operator's credentials, and quiet logs. */
export function handlerEnvironment(emulator: RunningEmulator): Record<string, string> {
  return {
    AWS_REGION: emulator.stack.region,
    // The operator's credentials (never denied): one process runs every handler, so no one function's role fits.
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_SESSION_TOKEN: 'local',
    AWS_ENDPOINT_URL_DYNAMODB: emulator.dynamoEndpoint,
    AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI: `${emulator.httpUrl}/${emulator.stage}`,
    AWS_ENDPOINT_URL_LAMBDA: emulator.httpUrl,
    LOG_LEVEL: process.env.TEST_LOGS ? 'debug' : 'silent',
  };
}
