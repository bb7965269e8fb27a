/**
 * Starting a target of the app under test on a random port, for the app's
 * own tests: the CloudBase server in this process (fast), or either target as
 * it ships, built from the project's config: the CloudBase zip's folder
 * through its scf_bootstrap, the Lambda handlers under the AWS emulator.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '../shared/app.js';
import { silentLogger, type Logger } from '../shared/log.js';
import { createCloudbaseServer } from '../functions/cloudbase/server.js';
import type { CloudbaseSettingsOverrides } from '../functions/cloudbase/settings.js';
import { buildAws, buildCloudbase } from '../scripts/build.js';
import { startEmulator } from '../scripts/emulator/index.js';
import { loadProject } from '../scripts/project.js';
import { runArtifact } from '../scripts/run-artifact.js';

export interface RunningTarget {
  /** The WebSocket URL without query: ws://127.0.0.1:PORT/ (CloudBase) or ws://127.0.0.1:PORT/STAGE (AWS). */
  url: string;
  stop(): Promise<void>;
}

export interface InProcessOptions {
  app: App;
  settings?: CloudbaseSettingsOverrides;
  logger?: Logger;
  page?: string;
}

/** The CloudBase adapter in this process on 127.0.0.1 and a free port. */
export async function startCloudbase(options: InProcessOptions): Promise<RunningTarget> {
  const server = createCloudbaseServer({
    app: options.app,
    logger: options.logger ?? silentLogger,
    page: options.page,
    settings: { ...options.settings, host: '127.0.0.1', port: 0 },
  });
  const { port } = await server.listen();
  return { url: `ws://127.0.0.1:${port}/`, stop: () => server.shutdown() };
}

export interface BuiltTargetOptions {
  /** A folder of the project; its cloudsocket.config.ts is found from there upward (default: the working directory). */
  cwd?: string;
  /** Environment variables of the function, over the config's. */
  env?: Record<string, string>;
}

/**
 * Builds the project into a temporary folder and starts one target from the
 * build, as `cloudsocket dev` does; `stop` ends it and removes the build.
 */
export async function startBuiltTarget(target: 'cloudbase' | 'aws', options: BuiltTargetOptions = {}): Promise<RunningTarget> {
  const project = await loadProject(options.cwd);
  const outDir = await mkdtemp(join(tmpdir(), 'cloudsocket-test-'));
  const removeBuild = () => rm(outDir, { recursive: true, force: true });
  try {
    if (target === 'cloudbase') {
      const { directory } = await buildCloudbase(outDir, project);
      const running = await runArtifact(directory, {
        port: 0,
        env: { ...project.env, ...project.cloudbase.env, ACCESS_PATH: project.cloudbase.path, HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...options.env },
      });
      return { url: `ws://127.0.0.1:${running.port}/`, stop: async () => void (await running.stop(), await removeBuild()) };
    }
    const { directory } = await buildAws(outDir, project);
    const emulator = await startEmulator({
      port: 0,
      distDir: directory,
      stage: project.aws.stage,
      functionEnv: { LOG_LEVEL: 'warn', ...options.env },
      logger: silentLogger,
    });
    return { url: emulator.url, stop: async () => void (await emulator.stop(), await removeBuild()) };
  } catch (error) {
    await removeBuild();
    throw error;
  }
}
