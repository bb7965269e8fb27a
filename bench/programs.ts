/**
 * Builds what the bench runs as child processes: the CloudBase artifact
 * exactly as `cloudsocket build` makes it, and the baseline servers, the
 * memory probe and the load process, bundled the same way (esbuild, one
 * minified file each) so every server under test starts on equal terms.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build as esbuild } from 'esbuild';
import { BUNDLE_DEFAULTS, buildCloudbase } from '../scripts/build.js';
import { packageRoot as projectRoot } from '../scripts/package-root.js';

export interface BenchPrograms {
  /** The unzipped-equivalent CloudBase function folder (scf_bootstrap, index.mjs). */
  cloudbaseDirectory: string;
  rawWs: string;
  wsFrameOnce: string;
  floor: string;
  socketio: string;
  loadWorker: string;
  /** The load process of the aws-churn scenario. */
  churnWorker: string;
  /** file: URL of the probe, for NODE_OPTIONS=--import. */
  probeUrl: string;
  remove(): Promise<void>;
}

const SOURCES = {
  rawWs: 'bench/servers/raw-ws.ts',
  wsFrameOnce: 'bench/servers/ws-frame-once.ts',
  floor: 'bench/servers/floor.ts',
  socketio: 'bench/servers/socketio.ts',
  probe: 'bench/servers/probe.ts',
  loadWorker: 'bench/load/worker.ts',
  churnWorker: 'bench/load/churn-worker.ts',
} as const;

export async function buildPrograms(): Promise<BenchPrograms> {
  const out = await mkdtemp(join(tmpdir(), 'cloudsocket-bench-'));
  const outfile = (name: string) => join(out, `${name}.mjs`);
  const [cloudbase] = await Promise.all([
    buildCloudbase(join(out, 'dist')),
    ...Object.entries(SOURCES).map(([name, source]) =>
      esbuild({ ...BUNDLE_DEFAULTS, entryPoints: [join(projectRoot, source)], outfile: outfile(name) }),
    ),
  ]);
  return {
    cloudbaseDirectory: cloudbase.directory,
    rawWs: outfile('rawWs'),
    wsFrameOnce: outfile('wsFrameOnce'),
    floor: outfile('floor'),
    socketio: outfile('socketio'),
    loadWorker: outfile('loadWorker'),
    churnWorker: outfile('churnWorker'),
    probeUrl: pathToFileURL(outfile('probe')).href,
    remove: () => rm(out, { recursive: true, force: true }),
  };
}
