import { CHAT_COMMANDS_HELP } from '../../clients/chat-input.js';
import { DEFAULT_RECONNECT_ATTEMPTS, DEFAULT_RECONNECT_DELAY_MS } from '../../clients/reconnecting-client.js';
import { isValidName } from '../../shared/protocol.js';
import { wantsColour } from '../chat-format.js';
import { integerFlag, parseFlags, UsageError, type Command } from '../cli-args.js';
import { TerminalChat, type TerminalChatOptions } from '../terminal-chat.js';

export const chatCommand: Command = {
  name: 'chat',
  summary: 'chat from the terminal with any target; reconnects by itself',
  help: `Usage: cloudsocket chat URL [clientId] [options]

Joins the chat at URL (ws:// or wss://; an http(s):// page address is taken
as the same host) and prints every message with its local time. Lines you
type are chat; these are commands:
${CHAT_COMMANDS_HELP.replace(/^/gm, '  ')}

A ping goes out every 30 s. When the connection drops (any close but 1000,
1008 or 4001) the client reconnects with exponential backoff and jitter and
resumes the session: the same clientId in the same room, the messages missed
meanwhile printed once and in order, then a "resumed" line. Ctrl+C leaves
cleanly (exit 0).

A handshake the server refuses with an HTTP answer is printed with its status
and body. A 401 or 403 (a missing or wrong token) is not retried: sending the
same credentials again cannot change it. Any other refusal (a 5xx) and an
unreachable server are retried as a dropped connection.

When stdin is not a terminal, lines are read one by one, each sent once the
connection is up, so the client can be scripted. After stdin ends it waits
(at most 5 s) until the server has answered what was sent (the echo of each
chat line, the list for /users, the welcome for /join; private messages have
no answer to wait for), then closes with 1000 and exits 0.

Colour is used only when stdout is a terminal, NO_COLOR is unset or empty,
and --no-color is not given.

Options:
  --room R                  room to join (default lobby)
  --reconnect-delay S       first reconnect delay in seconds (default ${DEFAULT_RECONNECT_DELAY_MS / 1000}; doubles per attempt)
  --reconnect-attempts N    reconnect attempts before giving up (default ${DEFAULT_RECONNECT_ATTEMPTS}; 0 = never)
  --no-color                plain output
  -h, --help                show this help

Exit codes: 0 after /quit, Ctrl+C, the end of stdin or a normal close by the
server; 1 when reconnecting gave up, the server refused the handshake with
401 or 403, the server closed for policy (1008), another connection resumed
this session (4001), or stdin is not a terminal and some of its lines could
not be sent (one line on stderr says how many); 2 for bad arguments.

Examples:
  cloudsocket chat ws://127.0.0.1:9000/ alice
  cloudsocket chat ws://127.0.0.1:3001/dev bob --room ops
  cloudsocket chat wss://ENV_ID.service.tcloudbase.com/chat
  cloudsocket chat wss://API_ID.execute-api.REGION.amazonaws.com/dev`,
  async run(argv) {
    const { values, positionals } = parseFlags(
      'chat',
      argv,
      {
        room: { type: 'string' },
        'reconnect-delay': { type: 'string' },
        'reconnect-attempts': { type: 'string' },
        'no-color': { type: 'boolean' },
      },
      true,
    );
    if (values.help) {
      console.log(chatCommand.help);
      return 0;
    }
    const [rawUrl, clientId, ...extra] = positionals;
    if (rawUrl === undefined) throw new UsageError('chat: the server URL is missing (see cloudsocket chat --help)');
    if (extra.length > 0) throw new UsageError(`chat: unexpected argument ${JSON.stringify(extra[0])} (see cloudsocket chat --help)`);
    if (clientId !== undefined && !isValidName(clientId)) {
      throw new UsageError(`chat: clientId must be 1-32 letters, digits, "_" or "-", got ${JSON.stringify(clientId)}`);
    }
    if (values.room !== undefined && !isValidName(values.room)) {
      throw new UsageError(`chat: --room must be 1-32 letters, digits, "_" or "-", got ${JSON.stringify(values.room)}`);
    }
    return runChat({
      url: webSocketUrl(rawUrl),
      clientId,
      room: values.room,
      reconnectDelayMs: secondsFlag('reconnect-delay', values['reconnect-delay'], DEFAULT_RECONNECT_DELAY_MS),
      reconnectAttempts: integerFlag('chat', 'reconnect-attempts', values['reconnect-attempts'], DEFAULT_RECONNECT_ATTEMPTS, 0, 1000),
      colour: wantsColour(values['no-color'] === true, process.env, process.stdout.isTTY === true),
    });
  },
};

function webSocketUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`chat: URL must look like ws://HOST[:PORT][/PATH], got ${JSON.stringify(raw)}`);
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new UsageError(`chat: URL must start with ws:// or wss://, got ${JSON.stringify(raw)}`);
  return url.href;
}

function secondsFlag(flag: string, value: string | undefined, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  const seconds = Number(value);
  if (value.trim() === '' || !Number.isFinite(seconds) || seconds < 0.01 || seconds > 3600) {
    throw new UsageError(`chat: --${flag} must be a number of seconds from 0.01 to 3600, got ${JSON.stringify(value)}`);
  }
  return Math.round(seconds * 1000);
}

/** A socket whose peer vanished can hold the process for ws's 30 s close timeout; nobody waits that long to quit. */
const EXIT_GRACE_MS = 2000;

function runChat(options: TerminalChatOptions): Promise<number> {
  const session = new TerminalChat(options).run();
  const exitSoon = (code: number) => void setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
  session.then(exitSoon, () => exitSoon(1));
  return session;
}
