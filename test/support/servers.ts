/**
 * Starting the CloudBase target for tests: from source in this process, or
 * from the built artifact as a child process through its own scf_bootstrap.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { createChatApp } from '../../apps/chat/index.js';
import type { App } from '../../shared/app.js';
import type { ConnectionRegistry } from '../../shared/registry.js';
import { createLogger, silentLogger } from '../../shared/log.js';
import { CloudbaseServer } from '../../functions/cloudbase/server.js';
import { readCloudbaseSettings, type CloudbaseSettings } from '../../functions/cloudbase/settings.js';
import { buildCloudbase } from '../../scripts/build.js';
import { loadPage } from '../../scripts/page.js';
import { runArtifact, type RunningArtifact } from '../../scripts/run-artifact.js';

export interface SourceServer {
  server: CloudbaseServer;
  url: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * The CloudBase server from source, on a random port unless `env.PORT` names one (to restart
 * a server where its clients will look for it); `env` is read like the real environment.
 */
export async function startSourceServer(env: Record<string, string> = {}, app?: App, registry?: ConnectionRegistry): Promise<SourceServer> {
  const settings: CloudbaseSettings = { ...readCloudbaseSettings({ PORT: '0', ...env, HOST: '127.0.0.1' }) };
  const logger = process.env.TEST_LOGS ? createLogger('debug') : silentLogger;
  const server = new CloudbaseServer({ app: app ?? createChatApp({ authToken: env.AUTH_TOKEN }), registry, settings, logger, page: await loadPage() });
  const { port } = await server.listen();
  return { server, port, url: `ws://127.0.0.1:${port}/`, stop: () => server.shutdown() };
}

export interface ArtifactServer {
  running: RunningArtifact;
  url: string;
  /** The empty temp dir the zip was unpacked into. */
  directory: string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Builds the zip, unpacks it into an empty temp dir and starts `bash scf_bootstrap` there, on `port` (0: a free one). */
export async function startArtifactServer(env: Record<string, string> = {}, port = 0): Promise<ArtifactServer> {
  const { zip } = await buildArtifactOnce();
  const unpacked = await mkdtemp(join(tmpdir(), 'cloudsocket-fn-'));
  await unzip(zip, unpacked);
  const running = await runArtifact(unpacked, { port, env: { HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env } });
  return {
    running,
    directory: unpacked,
    url: `ws://127.0.0.1:${running.port}/`,
    stop: async (signal) => {
      const code = await running.stop(signal);
      await rm(unpacked, { recursive: true, force: true });
      return code;
    },
  };
}

let built: Promise<{ zip: string; directory: string }> | undefined;

/** One build per test file into its own temp dir, so parallel files never share an output. */
export function buildArtifactOnce(): Promise<{ zip: string; directory: string }> {
  built ??= mkdtemp(join(tmpdir(), 'cloudsocket-dist-')).then((out) => buildCloudbase(out));
  return built;
}

/** Unpacks with yauzl, keeping the Unix mode of each entry as the zip states it. */
export async function unzip(zipPath: string, into: string): Promise<Map<string, number>> {
  const modes = new Map<string, number>();
  const zipfile = await new Promise<ZipFile>((resolve, reject) =>
    yauzl.open(zipPath, { lazyEntries: true }, (error, file) => (error ? reject(error) : resolve(file))),
  );
  await new Promise<void>((resolve, reject) => {
    zipfile.on('error', reject);
    zipfile.on('end', () => resolve());
    zipfile.on('entry', (entry: Entry) => {
      const mode = (entry.externalFileAttributes >>> 16) & 0o7777;
      modes.set(entry.fileName, mode);
      zipfile.openReadStream(entry, async (error, stream) => {
        if (error) return reject(error);
        const chunks: Buffer[] = [];
        for await (const chunk of stream) chunks.push(chunk as Buffer);
        const target = join(into, entry.fileName);
        await mkdir(dirname(target), { recursive: true });
        await writeFile(target, Buffer.concat(chunks));
        await chmod(target, mode || 0o644);
        zipfile.readEntry();
      });
    });
    zipfile.readEntry();
  });
  return modes;
}

