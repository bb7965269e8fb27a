/**
 * The `cloudsocket` command line. Each command lives in scripts/commands/ and
 * parses its own flags; this file only dispatches and reports errors.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CloudsocketError } from '../shared/errors.js';
import { UsageError, type Command } from './cli-args.js';
import { buildCommand } from './commands/build.js';
import { chatCommand } from './commands/chat.js';
import { devCommand } from './commands/dev.js';
import { deployCommand } from './commands/deploy.js';
import { initCommand } from './commands/init.js';
import { removeCommand } from './commands/remove.js';
import { packageRoot } from './package-root.js';

const commands: Command[] = [initCommand, devCommand, buildCommand, deployCommand, removeCommand, chatCommand];

// The benchmarks compare against raw ws and Socket.IO, which only a checkout of the repository has.
const benchModule = join(packageRoot, 'scripts/commands/bench.ts');
if (existsSync(join(packageRoot, 'bench')) && existsSync(benchModule)) {
  commands.push(((await import(pathToFileURL(benchModule).href)) as { benchCommand: Command }).benchCommand);
}

function version(): string {
  // package.json sits beside the sources, or one folder above lib/.
  for (const candidate of [join(packageRoot, 'package.json'), join(packageRoot, '..', 'package.json')]) {
    if (!existsSync(candidate)) continue;
    const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'cloudsocket' && pkg.version) return pkg.version;
  }
  return 'unknown';
}

function overview(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'Usage: cloudsocket <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `cloudsocket <command> --help` for its options, `cloudsocket --version` for the version.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v' || name === 'version') {
    console.log(version());
    return 0;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(overview());
    return name === undefined ? 1 : 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) throw new UsageError(`unknown command "${name}"\n\n${overview()}`);
  return command.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // Known errors are one line for the user; anything else is a bug worth its stack.
    if (error instanceof CloudsocketError) console.error(`cloudsocket: ${error.message}`);
    else console.error(error);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  },
);
