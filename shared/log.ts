/**
 * Structured logs: one JSON object per line on stdout, so CloudBase's and
 * CloudWatch's log views can filter by field.
 */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
}

export interface LoggerOptions {
  /** Rewrites an error's stack before it is logged (the AWS adapter maps it to the app's source lines). */
  stackOf?: (stack: string) => string;
}

export function createLogger(level: LogLevel, write: (line: string) => void = (line) => process.stdout.write(line), options: LoggerOptions = {}): Logger {
  const threshold = LOG_LEVELS.indexOf(level);
  const stackOf = options.stackOf ?? ((stack: string) => stack);
  const emit = (at: LogLevel) => (event: string, fields?: LogFields) => {
    if (LOG_LEVELS.indexOf(at) < threshold) return;
    write(JSON.stringify({ time: new Date().toISOString(), level: at, event, ...serializable(fields, stackOf) }) + '\n');
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

export const silentLogger: Logger = createLogger('silent');

/** Errors become {name, code, message, stack}; JSON.stringify would print {}. */
function serializable(fields: LogFields | undefined, stackOf: (stack: string) => string): LogFields | undefined {
  if (!fields) return fields;
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] = value instanceof Error
      ? { name: value.name, code: (value as { code?: unknown }).code, message: value.message, stack: value.stack === undefined ? undefined : stackOf(value.stack) }
      : value;
  }
  return out;
}
