/**
 * A local CloudBase of several instances: N copies of the built function,
 * each its own process started through scf_bootstrap on a port of its own,
 * behind one front door that assigns each new WebSocket to an instance the
 * way CloudBase does. CloudBase schedules connections onto an instance up to
 * its per-instance concurrency (1 unless configured) before it uses another
 * (docs/cloudbase.md); here the number of instances is fixed, so a
 * connection that finds every instance full is refused with 503, where
 * CloudBase would start one more.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { ClientFrameCounter, type CloudbaseCostMeter } from './cloudbase-cost-meter.js';
import { PortInUseError } from './emulator/errors.js';
import { runArtifact, type ExitStatus, type RunningArtifact } from './run-artifact.js';

export interface FleetOptions {
  directory: string;
  /** The front door's port. */
  port: number;
  host?: string;
  instances: number;
  /** Connections one instance takes before the next one is used. */
  concurrency: number;
  env: Record<string, string>;
  onLine?: (line: string, instance: number) => void;
  /** An instance ended by itself; the others go on, as on CloudBase. */
  onExit?: (instance: number, status: ExitStatus, stderrTail: string) => void;
  /** Counts what the traffic would be billed, and answers its report at GET /_emulator/cost. */
  costMeter?: CloudbaseCostMeter;
  /**
   * Bill each connection as its own instance, as CloudBase's default of one
   * connection per instance would, whatever the local shape (one process
   * serving them all when dev runs without --instances).
   */
  billEachConnection?: boolean;
}

/** What dev needs of a running CloudBase target, one process or a fleet. */
export interface RunningCloudbase {
  port: number;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves when the target ended by itself (a fleet: its last instance). */
  exitStatus: Promise<ExitStatus>;
  stderrTail(): string;
}

export interface RunningFleet extends RunningCloudbase {
  members: RunningArtifact[];
  /** Open WebSockets per instance, as the front door assigned them. */
  connections(): number[];
}

export async function startFleet(options: FleetOptions): Promise<RunningFleet> {
  const members: RunningArtifact[] = [];
  try {
    for (let i = 0; i < options.instances; i++) {
      members.push(
        await runArtifact(options.directory, {
          port: 0,
          // The front door is what clients reach; each instance listens on loopback only.
          env: { ...options.env, HOST: '127.0.0.1' },
          onLine: options.onLine && ((line) => options.onLine!(line, i)),
        }),
      );
    }
  } catch (error) {
    await Promise.all(members.map((member) => member.stop('SIGKILL')));
    throw error;
  }
  const open = members.map(() => 0);
  const alive = members.map(() => true);
  let stopping = false;
  let deathTail = '';
  const exitStatus = Promise.all(
    members.map((member, i) =>
      member.exitStatus.then((status) => {
        alive[i] = false;
        deathTail = member.stderrTail();
        if (!stopping) options.onExit?.(i, status, deathTail);
        return status;
      }),
    ),
  ).then((statuses) => statuses.at(-1)!);

  const pick = (): number | undefined => {
    for (let i = 0; i < members.length; i++) if (alive[i] && open[i]! < options.concurrency) return i;
    return undefined;
  };

  const meter = options.costMeter;
  let invocationSerial = 0;
  const door = createServer((req, res) => {
    if (meter && req.method === 'GET' && req.url === '/_emulator/cost') {
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(meter.report()));
    }
    // Pages and health checks are not connections: any live instance answers them.
    const target = members[alive.indexOf(true)];
    if (!target) return void res.writeHead(503).end();
    const upstream = httpRequest({ host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      if (meter) {
        // An HTTP request is an invocation of its own, billed from the request to the end of its answer.
        const instance = `request-${++invocationSerial}`;
        meter.started(instance);
        answer.on('data', (chunk: Buffer) => meter.sent(chunk.length));
        res.once('close', () => meter.finished(instance));
      }
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.headersSent ? res.destroy() : res.writeHead(502).end());
    req.pipe(upstream);
  });
  door.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const index = pick();
    if (index === undefined) {
      const body = JSON.stringify({
        code: 'no_instance_available',
        message: noInstanceMessage(alive.filter(Boolean).length, members.length, options.concurrency),
      });
      socket.end(`HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      return;
    }
    open[index]!++;
    const billed = options.billEachConnection ? `connection-${++invocationSerial}` : `instance-${index}`;
    meter?.started(billed);
    let counted = true;
    const release = () => {
      if (counted) {
        open[index]!--;
        meter?.finished(billed);
      }
      counted = false;
    };
    const upstream: Socket = connect(members[index]!.port, '127.0.0.1', () => {
      upstream.write(requestHead(req));
      if (head.length > 0) upstream.write(head);
      if (meter) {
        const frames = new ClientFrameCounter(() => meter.message());
        if (head.length > 0) frames.push(head);
        socket.on('data', (chunk: Buffer) => frames.push(chunk));
        upstream.on('data', (chunk: Buffer) => meter.sent(chunk.length));
      }
      socket.pipe(upstream).pipe(socket);
    });
    upstream.on('error', () => socket.destroy());
    upstream.on('close', () => {
      release();
      socket.destroy();
    });
    socket.on('close', () => {
      release();
      upstream.destroy();
    });
  });

  const host = options.host ?? '0.0.0.0';
  try {
    await listen(door, options.port, host);
  } catch (error) {
    await Promise.all(members.map((member) => member.stop('SIGKILL')));
    throw (error as NodeJS.ErrnoException).code === 'EADDRINUSE' ? new PortInUseError(options.port) : error;
  }
  const port = (door.address() as AddressInfo).port;
  return {
    port,
    members,
    connections: () => [...open],
    exitStatus,
    stderrTail: () => deathTail,
    stop: async (signal = 'SIGTERM') => {
      stopping = true;
      const codes = await Promise.all(members.map((member) => member.stop(signal)));
      door.closeAllConnections();
      await new Promise<void>((resolve) => door.close(() => resolve()));
      // Exit 0 only when every instance drained cleanly.
      return codes.find((code) => code !== 0) ?? 0;
    },
  };
}

/** The request line and headers as the client sent them (raw, so nothing is re-cased or merged). */
function requestHead(req: IncomingMessage): string {
  let head = `${req.method} ${req.url} HTTP/1.1\r\n`;
  for (let i = 0; i < req.rawHeaders.length; i += 2) head += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
  return `${head}\r\n`;
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Why no instance takes a connection: all of the live ones are full (and how many are left alive). */
export function noInstanceMessage(live: number, started: number, concurrency: number): string {
  const lost = started - live;
  const which = lost === 0 ? `all ${started} instances serve` : `the ${live} live instance(s) of ${started} (${lost} ended) serve`;
  return `${which} ${concurrency} connection(s) each; CloudBase would start another (raise --instances or --concurrency)`;
}
