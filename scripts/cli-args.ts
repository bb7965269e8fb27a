import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CloudsocketError } from '../shared/errors.js';

/** A command line that cannot be run as typed; the message names the flag or argument. */
export class UsageError extends CloudsocketError {
  constructor(message: string) {
    super('invalid_usage', message);
  }
}

export interface Command {
  name: string;
  summary: string;
  /** The whole `--help` text. */
  help: string;
  /** Resolves to the process exit code. */
  run(argv: string[]): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** A command whose first argument picks a cloud (`deploy aws`, `remove cloudbase`). */
export function perTargetCommand(
  name: string,
  summary: string,
  help: string,
  targets: Record<'aws' | 'cloudbase', (argv: string[]) => Promise<number>>,
): Command {
  return {
    name,
    summary,
    help,
    async run(argv) {
      const [target, ...rest] = argv;
      if (target === 'aws' || target === 'cloudbase') return targets[target](rest);
      if (target === undefined || target === '--help' || target === '-h') {
        console.log(help);
        return target === undefined ? 2 : 0;
      }
      throw new UsageError(`${name}: unknown target "${target.slice(0, 40)}"; use aws or cloudbase (see cloudsocket ${name} --help)`);
    },
  };
}

/** node:util parseArgs, with its errors turned into one-line UsageErrors. */
type Parsed<T extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: T & { help: { type: 'boolean'; short: 'h' } }; allowPositionals: boolean; strict: true }>>;

export function parseFlags<T extends Options>(command: string, argv: string[], options: T, allowPositionals = false): Parsed<T> {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (error) {
    const ambiguous = dashedValue(error, argv);
    if (ambiguous) throw new UsageError(`${command}: ${ambiguous.flag} ${ambiguous.value}: a value that begins with "-" goes after "=", as ${ambiguous.long}=${ambiguous.value}`);
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new UsageError(`${command}: ${message} (see cloudsocket ${command} --help)`);
  }
}

/**
 * A flag given a value that looks like a flag (`--port -1`, `-p -1`), which
 * parseArgs refuses as ambiguous: the flag as typed, its long name, the value.
 */
function dashedValue(error: unknown, argv: readonly string[]): { flag: string; long: string; value: string } | undefined {
  if ((error as { code?: unknown } | null)?.code !== 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return undefined;
  const message = (error as Error).message;
  const flag = /^Option '(-[^']+)' argument is ambiguous/.exec(message)?.[1];
  const long = /use '(--[^=']+)=-XYZ'/.exec(message)?.[1] ?? flag;
  const at = flag === undefined ? -1 : argv.indexOf(flag);
  const value = argv[at + 1];
  return flag !== undefined && long !== undefined && at >= 0 && value?.startsWith('-') ? { flag, long, value: value.slice(0, 40) } : undefined;
}

export function integerFlag(command: string, flag: string, value: string | undefined, fallback: number, min = 0, max = 65535): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
    throw new UsageError(`${command}: --${flag} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return parsed;
}

/** A probability flag: a number from 0 to 1; undefined when not given. */
export function probabilityFlag(command: string, flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed) || parsed < 0 || parsed > 1) {
    throw new UsageError(`${command}: --${flag} must be a number from 0 to 1, got ${JSON.stringify(value)}`);
  }
  return parsed;
}
