/**
 * A CloudBase function's whole life: read the environment, serve the app on
 * PORT, and on SIGTERM (CloudBase recycling the instance) close every client
 * with 1012 so they reconnect elsewhere. The entry `cloudsocket build`
 * generates calls this with the project's app.
 */
import { readFile } from 'node:fs/promises';
import type { App } from '../../shared/app.js';
import { CloudsocketError } from '../../shared/errors.js';
import { createLogger, type Logger } from '../../shared/log.js';
import type { ConnectionRegistry } from '../../shared/registry.js';
import type { StateStore } from '../../shared/room-state.js';
import { RedisScaleOut } from '../../registries/redis.js';
import { CloudbaseServer } from './server.js';
import { readCloudbaseSettings, type CloudbaseSettings } from './settings.js';

export interface CloudbaseFunctionOptions {
  app: App;
  /** Over the one REDIS_URL picks (Redis when set, else this process's memory); the rooms' logs are chosen alike. */
  registry?: ConnectionRegistry;
  /** Over the one REDIS_URL picks (Redis when set, else this process's memory). */
  state?: StateStore;
  /** Default: JSON lines on stdout at LOG_LEVEL. */
  logger?: Logger;
  /** Where the page is; default `public/index.html` beside the running bundle, when present. */
  pageUrl?: URL;
}

export async function startCloudbaseFunction(options: CloudbaseFunctionOptions): Promise<CloudbaseServer> {
  let settings;
  try {
    settings = readCloudbaseSettings(process.env);
  } catch (error) {
    if (!(error instanceof CloudsocketError)) throw error;
    process.stderr.write(`cloudsocket: ${error.message}\n`);
    process.exit(2);
  }
  const logger = options.logger ?? createLogger(settings.logLevel);
  process.on('unhandledRejection', (error) => logger.error('unhandled_rejection', { error }));

  const pageUrl = options.pageUrl ?? new URL('./public/index.html', import.meta.url);
  const page = await readFile(pageUrl, 'utf8').catch(() => undefined);
  const scale = options.registry ? undefined : await connectScaleOut(settings, logger);
  const server = new CloudbaseServer({
    app: options.app,
    registry: options.registry ?? scale?.registry,
    log: scale?.log,
    backplane: scale?.backplane,
    instanceId: scale?.instanceId,
    state: options.state ?? scale?.state,
    settings,
    logger,
    page,
  });
  try {
    await server.listen();
    await scale?.start(server.engine);
  } catch (error) {
    process.stderr.write(`cloudsocket: cannot listen on ${settings.host}:${settings.port}: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }

  const stop = (signal: string) => {
    logger.info('signal', { signal });
    // A second signal while draining means "now".
    process.once(signal, () => process.exit(1));
    // Clients first (1012, and their user_left reaches every instance), then off the instance list.
    server
      .shutdown()
      .then(() => scale?.stop())
      .then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return server;
}

/** Redis when REDIS_URL is set; one that cannot be reached now is one line on stderr and exit 1. */
async function connectScaleOut(settings: CloudbaseSettings, logger: Logger): Promise<RedisScaleOut | undefined> {
  if (!settings.redisUrl) return undefined;
  try {
    const scale = await RedisScaleOut.connect({
      url: settings.redisUrl,
      prefix: settings.redisPrefix,
      heartbeatMs: settings.instanceHeartbeatMs,
      roomLog: settings.core.roomLog,
      roomStateTtlMs: settings.core.roomStateTtlMs,
      // Whoever started the process may name it (scripts/run-artifact.ts does); CloudBase does not.
      instanceId: process.env.CLOUDSOCKET_INSTANCE_ID || undefined,
      logger,
    });
    logger.info('redis_connected', { instanceId: scale.instanceId });
    return scale;
  } catch (error) {
    if (!(error instanceof CloudsocketError)) throw error;
    process.stderr.write(`cloudsocket: ${error.message}\n`);
    process.exit(1);
  }
}
