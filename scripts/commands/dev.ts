import { join } from 'node:path';
import { buildCloudbase, isStale, projectRoot } from '../build.js';
import { integerFlag, parseFlags, type Command } from '../cli-args.js';
import { runArtifact } from '../run-artifact.js';

export const devCommand: Command = {
  name: 'dev',
  summary: 'run the targets locally (the CloudBase function from its built artifact)',
  help: `Usage: cloudsocket dev [--port N] [--no-build]

Builds dist/ when sources changed, then starts the CloudBase function from
dist/cloudbase through its own scf_bootstrap, exactly as CloudBase would.
Ctrl+C closes every client with 1012 and stops.

Options:
  --port N     port of the CloudBase target (default 9000, or $PORT)
  --no-build   run dist/ as it is
  -h, --help   show this help

Environment variables of the function (LOG_LEVEL, HEARTBEAT_TIMEOUT, ...) pass through.`,
  async run(argv) {
    const { values } = parseFlags('dev', argv, { port: { type: 'string' }, 'no-build': { type: 'boolean' } });
    if (values.help) {
      console.log(devCommand.help);
      return 0;
    }
    const port = integerFlag('dev', 'port', values.port ?? process.env.PORT, 9000);
    const directory = join(projectRoot, 'dist/cloudbase');
    if (!values['no-build'] && (await isStale(join(projectRoot, 'dist/cloudbase.zip')))) {
      console.log('building dist/ ...');
      await buildCloudbase();
    }
    const running = await runArtifact(directory, { port, onLine: (line) => console.log(line) });
    console.log(`\ncloudsocket CloudBase target  ws://127.0.0.1:${running.port}/  (page: http://127.0.0.1:${running.port}/)\n`);
    // The child is in our process group, so Ctrl+C reaches it too; we only wait for it to drain.
    const forward = (signal: NodeJS.Signals) => void running.stop(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const code = await running.exited;
    return code ?? 0;
  },
};
