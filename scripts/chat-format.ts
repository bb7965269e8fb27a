/**
 * How `cloudsocket chat` prints what happens: one line per event, a local
 * time first, colour only when asked for. Text that came over the wire is
 * stripped of control characters first, so nobody can drive the reader's
 * terminal with escape sequences inside a chat message.
 */
import { SESSION_REPLACED_CLOSE_CODE, type ChatFrame, type ConnectionState, type ResumeOutcome } from '../clients/reconnecting-client.js';
import { describeRefusal, type HandshakeRefusal } from './refusal-socket.js';

type Paint = (text: string) => string;

export interface Palette {
  dim: Paint;
  bold: Paint;
  red: Paint;
  yellow: Paint;
  magenta: Paint;
  ownName: Paint;
  /** A stable colour per name, so each person is easy to follow. */
  name(name: string): Paint;
}

const sgr = (open: number, close: number): Paint => (text) => `\x1b[${open}m${text}\x1b[${close}m`;
const plain: Paint = (text) => text;
const NAME_COLOURS = [sgr(36, 39), sgr(32, 39), sgr(33, 39), sgr(35, 39), sgr(96, 39), sgr(92, 39)];

export function palette(colour: boolean): Palette {
  if (!colour) return { dim: plain, bold: plain, red: plain, yellow: plain, magenta: plain, ownName: plain, name: () => plain };
  return {
    dim: sgr(2, 22),
    bold: sgr(1, 22),
    red: sgr(31, 39),
    yellow: sgr(33, 39),
    magenta: sgr(35, 39),
    ownName: (text) => sgr(1, 22)(sgr(34, 39)(text)),
    name: (name) => NAME_COLOURS[hash(name) % NAME_COLOURS.length]!,
  };
}

/**
 * Colour unless --no-color, a non-empty NO_COLOR (no-color.org), or a stdout
 * that is not a terminal: escape codes in a file or a pipe are noise.
 */
export function wantsColour(noColorFlag: boolean, env: NodeJS.ProcessEnv, stdoutIsTty: boolean): boolean {
  return !noColorFlag && !env.NO_COLOR && stdoutIsTty;
}

// C0 controls except tab and newline, DEL, and C1 controls (ESC and CSI among them).
const CONTROL_CHARACTERS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/** Wire text made safe to print: control characters become U+FFFD, continuation lines are indented. */
export function safeText(text: string): string {
  return text.replace(CONTROL_CHARACTERS, '\ufffd').replace(/\n/g, '\n  ');
}

export function clock(date: Date): string {
  return [date.getHours(), date.getMinutes(), date.getSeconds()].map((part) => String(part).padStart(2, '0')).join(':');
}

export class ChatFormatter {
  constructor(private readonly paint: Palette) {}

  /** The line for a server frame, or undefined for frames not worth a line (pongs) or told otherwise (how a resume went). */
  frame(frame: ChatFrame, me: string | undefined): string | undefined {
    const at = frame.timestamp ? new Date(frame.timestamp) : new Date();
    const { paint } = this;
    switch (frame.type) {
      case 'welcome':
        return this.line(at, paint.dim(`* ${safeText(frame.message)} (${frame.onlineCount} online)`));
      case 'chat': {
        const name = safeText(frame.clientId);
        const shown = frame.clientId === me ? paint.ownName(name) : paint.name(frame.clientId)(name);
        return this.line(at, `${shown}: ${safeText(frame.message)}`);
      }
      case 'private':
        return this.line(at, paint.magenta(`[private from ${safeText(frame.clientId)}] `) + safeText(frame.message));
      case 'user_joined':
      case 'user_left':
        return this.line(at, paint.dim(`* ${safeText(frame.message)} (${frame.onlineCount} online)`));
      case 'users':
        return this.line(at, paint.dim(`* in ${safeText(frame.room)} (${frame.onlineCount}): ${frame.users.map(safeText).join(', ')}`));
      case 'error':
        return this.line(at, paint.red(`! ${safeText(frame.message)} (${safeText(frame.code)})`));
      case 'pong':
      case 'resumed':
      case 'resume_failed':
        return undefined;
    }
  }

  /** The line that says whether a reconnect took up the session where it was, after the missed frames it printed. */
  resume(outcome: ResumeOutcome): string {
    if (!outcome.resumed) return this.error(`could not resume (${safeText(outcome.code)}): ${safeText(outcome.message)}; continuing as a new session`);
    const { delivered } = outcome;
    const missed = delivered === 0 ? 'nothing missed' : `${delivered} missed ${delivered === 1 ? 'message' : 'messages'} above`;
    return this.system(`resumed as ${safeText(outcome.clientId)} in ${safeText(outcome.room)}: ${missed}`);
  }

  /** The line for a change of connection state, or undefined when the welcome that follows says enough. */
  /** `refusal`: the server answered this connection's handshake with an HTTP error instead of a WebSocket. */
  state(state: ConnectionState, url: string, refusal?: HandshakeRefusal): string | undefined {
    const { paint } = this;
    if (refusal && state.status === 'reconnecting') {
      return this.error(`the server refused the connection (${safeText(describeRefusal(refusal))}); reconnecting in ${(state.delayMs / 1000).toFixed(1)} s, attempt ${state.attempt} of ${state.maxAttempts}`);
    }
    if (refusal?.final && state.status === 'closed') {
      return this.error(`the server refused the connection (${safeText(describeRefusal(refusal))}); not retrying, as a ${refusal.status} stays until the credentials change`);
    }
    switch (state.status) {
      case 'connecting':
        return state.attempt === 0 ? this.system(`connecting to ${url}`) : this.system(`reconnecting to ${url} (attempt ${state.attempt})`);
      case 'open':
        return undefined;
      case 'reconnecting':
        return this.line(
          new Date(),
          paint.yellow(`! connection lost (${describeClose(state.code, state.reason)}); reconnecting in ${(state.delayMs / 1000).toFixed(1)} s, attempt ${state.attempt} of ${state.maxAttempts}`),
        );
      case 'closed':
        if (state.gaveUp) return this.error(`gave up reconnecting (last close ${describeClose(state.code, state.reason)})`);
        if (state.code === SESSION_REPLACED_CLOSE_CODE) {
          return this.error(`disconnected (${describeClose(state.code, state.reason)}): another connection resumed this session, so this one does not come back`);
        }
        return this.system(`disconnected (${describeClose(state.code, state.reason)})`);
    }
  }

  ownPrivate(to: string, text: string): string {
    return this.line(new Date(), this.paint.magenta(`[private to ${safeText(to)}] `) + safeText(text));
  }

  system(text: string): string {
    return this.line(new Date(), this.paint.dim(`* ${text}`));
  }

  error(text: string): string {
    return this.line(new Date(), this.paint.red(`! ${text}`));
  }

  private line(at: Date, text: string): string {
    return `${this.paint.dim(clock(at))} ${text}`;
  }
}

export function describeClose(code: number, reason: string): string {
  return reason ? `${code} ${safeText(reason)}` : String(code);
}

function hash(text: string): number {
  let value = 0;
  for (let i = 0; i < text.length; i++) value = (value * 31 + text.charCodeAt(i)) >>> 0;
  return value;
}
