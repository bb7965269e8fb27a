/**
 * Preloaded into every server under test (NODE_OPTIONS=--import), so the
 * servers themselves carry no bench code. A side HTTP listener on its own
 * port answers:
 *   GET /memory          process.memoryUsage() after a full GC
 *   GET /cpu             process.cpuUsage()
 *   GET /profile/start   starts the V8 CPU profiler
 *   GET /profile/stop    stops it and answers the .cpuprofile JSON
 *   GET /heap-snapshot   writes a heap snapshot to the server's temp dir and answers its path
 * (--cpu-prof is refused in NODE_OPTIONS, hence the inspector session.)
 * Its port goes to stdout as a JSON line the bench picks up.
 */
import { createServer, type ServerResponse } from 'node:http';
import { Session } from 'node:inspector';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';

const gc = (globalThis as { gc?: () => void }).gc;
let profiler: Session | undefined;

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const probe = createServer((req, res) => {
  switch (req.url) {
    case '/cpu':
      return json(res, 200, process.cpuUsage());
    case '/memory':
      // Two passes: the first may only queue finalizers that free more on the second.
      gc?.();
      gc?.();
      return json(res, 200, { ...process.memoryUsage(), collected: gc !== undefined });
    case '/profile/start':
      profiler ??= new Session();
      profiler.connect();
      profiler.post('Profiler.enable', () => profiler!.post('Profiler.start', () => json(res, 200, { started: true })));
      return;
    case '/profile/stop':
      if (!profiler) return json(res, 409, { error: 'not profiling' });
      profiler.post('Profiler.stop', (error, result) => {
        profiler?.disconnect();
        profiler = undefined;
        if (error) json(res, 500, { error: error.message });
        else json(res, 200, result.profile);
      });
      return;
    case '/heap-snapshot':
      gc?.();
      return json(res, 200, { path: writeHeapSnapshot(join(tmpdir(), `bench-${process.pid}-${Date.now()}.heapsnapshot`)) });
    default:
      res.writeHead(404);
      res.end();
  }
});

probe.listen(0, '127.0.0.1', () => {
  const address = probe.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  process.stdout.write(JSON.stringify({ event: 'bench_probe', port }) + '\n');
});
// The probe must never keep a server alive that would otherwise exit.
probe.unref();
