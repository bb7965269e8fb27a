/**
 * Entry point of the CloudBase function (and of `cloudsocket dev`): reads the
 * environment, serves the chat on PORT, and on SIGTERM (CloudBase recycling
 * the instance) closes every client with 1012 so they reconnect elsewhere.
 */
import { readFile } from 'node:fs/promises';
import { createChatApp } from '../../shared/chat.js';
import { CloudsocketError } from '../../shared/errors.js';
import { createLogger } from '../../shared/log.js';
import { CloudbaseServer } from './server.js';
import { readCloudbaseSettings } from './settings.js';

async function main(): Promise<void> {
  let settings;
  try {
    settings = readCloudbaseSettings(process.env);
  } catch (error) {
    if (!(error instanceof CloudsocketError)) throw error;
    process.stderr.write(`cloudsocket: ${error.message}\n`);
    process.exit(2);
  }
  const logger = createLogger(settings.logLevel);
  process.on('unhandledRejection', (error) => logger.error('unhandled_rejection', { error }));

  const page = await readFile(new URL('./public/index.html', import.meta.url), 'utf8').catch(() => undefined);
  const server = new CloudbaseServer({ app: createChatApp({ authToken: settings.authToken }), settings, logger, page });
  await server.listen();

  const stop = (signal: string) => {
    logger.info('signal', { signal });
    // A second signal while draining means "now".
    process.once(signal, () => process.exit(1));
    server.shutdown().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main().catch((error) => {
  process.stderr.write(`cloudsocket: cannot start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
