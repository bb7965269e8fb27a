/**
 * What a line typed into a chat client means. The page's message box and the
 * terminal client read the same slash commands, so they are parsed once here.
 */

export type ChatInput =
  | { kind: 'chat'; text: string }
  | { kind: 'private'; to: string; text: string }
  | { kind: 'join'; room: string }
  | { kind: 'help' | 'ping' | 'status' | 'users' | 'clear' | 'quit' }
  | { kind: 'invalid'; message: string }
  | { kind: 'empty' };

export const CHAT_COMMANDS_HELP = [
  '/help            this list',
  '/ping            measure the round-trip time to the server',
  '/status          connection state, identity and room',
  '/users           who is in the room',
  '/msg ID TEXT     private message to ID',
  '/join ROOM       move to another room',
  '/clear           clear the messages',
  '/quit            disconnect',
  '//TEXT           chat TEXT starting with a slash',
  'anything else    chat to the room',
].join('\n');

const NO_ARGUMENT_COMMANDS = new Set(['help', 'ping', 'status', 'users', 'clear', 'quit'] as const);

/**
 * The largest frame API Gateway takes (32 KiB; a larger one closes the
 * connection with 1009, and the line would be lost with it). The chat's own
 * limit on content is far below; the server answers that one itself.
 */
export const MAX_LINE_BYTES = 32 * 1024;

const encoder = new TextEncoder();

export function parseChatInput(line: string): ChatInput {
  if (line.trim() === '') return { kind: 'empty' };
  // Room for the frame's JSON around the text.
  const bytes = encoder.encode(line).length;
  if (bytes > MAX_LINE_BYTES - 256) return { kind: 'invalid', message: `not sent: a line of ${bytes} bytes is more than one frame carries (${MAX_LINE_BYTES - 256} at most)` };
  if (line.startsWith('//')) return { kind: 'chat', text: line.slice(1) };
  if (!line.startsWith('/')) return { kind: 'chat', text: line };

  const [, name = '', rest = ''] = /^\/(\S*)\s*([\s\S]*)$/.exec(line) ?? [];
  const command = name.toLowerCase();
  if (isNoArgumentCommand(command)) return { kind: command };
  if (command === 'msg' || command === 'm') {
    const match = /^(\S+)\s+([\s\S]+)$/.exec(rest);
    if (!match) return { kind: 'invalid', message: 'usage: /msg ID TEXT' };
    return { kind: 'private', to: match[1]!, text: match[2]! };
  }
  if (command === 'join') {
    const room = rest.trim();
    if (room === '' || /\s/.test(room)) return { kind: 'invalid', message: 'usage: /join ROOM' };
    return { kind: 'join', room };
  }
  return { kind: 'invalid', message: `unknown command /${name.slice(0, 32)}; /help lists the commands` };
}

function isNoArgumentCommand(name: string): name is 'help' | 'ping' | 'status' | 'users' | 'clear' | 'quit' {
  return (NO_ARGUMENT_COMMANDS as Set<string>).has(name);
}
