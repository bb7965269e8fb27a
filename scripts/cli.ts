/**
 * The `cloudsocket` command line. Each command lives in scripts/commands/ and
 * parses its own flags; this file only dispatches and reports errors.
 */
import { CloudsocketError } from '../shared/errors.js';
import { UsageError, type Command } from './cli-args.js';
import { benchCommand } from './commands/bench.js';
import { buildCommand } from './commands/build.js';
import { chatCommand } from './commands/chat.js';
import { devCommand } from './commands/dev.js';
import { deployCommand } from './commands/deploy.js';
import { removeCommand } from './commands/remove.js';

const commands: Command[] = [devCommand, buildCommand, deployCommand, removeCommand, chatCommand, benchCommand];

function overview(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'Usage: cloudsocket <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `cloudsocket <command> --help` for its options.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
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
