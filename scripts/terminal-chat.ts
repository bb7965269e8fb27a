/**
 * One `cloudsocket chat` session: a ReconnectingClient over `ws`, fed by the
 * lines of stdin and printing to stdout. With a terminal it keeps a prompt
 * under the incoming lines; without one it is a script runner that loses no
 * line and leaves once stdin ends and the server has answered.
 */
import { createInterface, type Interface } from 'node:readline';
import { CHAT_COMMANDS_HELP, parseChatInput, type ChatInput } from '../clients/chat-input.js';
import { ReconnectingClient, SESSION_REPLACED_CLOSE_CODE, type ChatFrame, type ConnectionState } from '../clients/reconnecting-client.js';
import { CloudsocketError } from '../shared/errors.js';
import { isValidName } from '../shared/protocol.js';
import { ChatFormatter, describeClose, palette, safeText } from './chat-format.js';
import { refusalReportingWebSocket, type HandshakeRefusal } from './refusal-socket.js';

export interface TerminalChatOptions {
  url: string;
  clientId: string | undefined;
  room: string | undefined;
  reconnectDelayMs: number;
  reconnectAttempts: number;
  colour: boolean;
}

/** Final closes that end the session against the user's will: policy (auth, abuse), or the session taken over by another connection. */
const FAILED_CLOSE_CODES = new Set([1008, SESSION_REPLACED_CLOSE_CODE]);

/** How long the end of stdin waits for the server to answer what was sent. */
const DRAIN_TIMEOUT_MS = 5000;

/** Frames that answer a line the user sent (a /ping is awaited where it is sent). */
const ANSWERING_FRAMES = ['chat', 'users', 'welcome'] as const;
type AnsweringFrame = (typeof ANSWERING_FRAMES)[number];

/** Lines that only mean something once they reach the server. */
function needsConnection(command: ChatInput): boolean {
  switch (command.kind) {
    case 'chat':
    case 'private':
    case 'users':
    case 'ping':
      return true;
    case 'join':
      return isValidName(command.room);
    default:
      return false;
  }
}

/** A script fed through stdin must not pass for done when part of it never reached the server. */
export class LinesNotSentError extends CloudsocketError {
  constructor(count: number, why: string) {
    super('lines_not_sent', `${count === 1 ? '1 line from stdin was' : `${count} lines from stdin were`} not sent: ${why}`);
  }
}

export class TerminalChat {
  private readonly client: ReconnectingClient;
  private readonly format: ChatFormatter;
  private readonly interactive = process.stdin.isTTY === true;
  private readonly input: Interface;
  private me: string | undefined;
  /** Whether the current connection has had its welcome: only then are clientId and room known. */
  private welcomed = false;
  private finished = false;
  private quitting = false;
  private readyWaiters: Array<(ready: boolean) => void> = [];
  /**
   * Answers still due for lines sent, by the frame type that answers them. On API
   * Gateway every frame is its own Lambda invocation, so a frame sent just before
   * the goodbye can be handled after it, and lost, unless we wait for its answer.
   */
  private readonly unanswered: Record<AnsweringFrame, number> = { chat: 0, users: 0, welcome: 0 };
  private answersWaiter: (() => void) | undefined;
  /** Lines are handled one after another: each waits for the connection, so none is lost while reconnecting. */
  private lines = Promise.resolve();
  /** Lines read that needed the server, and how many of them went out; counted as they happen, so the end needs no waiting. */
  private needed = 0;
  private delivered = 0;
  /** Lines after a /quit are left out on purpose, so they are not owed. */
  private quitRead = false;
  /** The current connection's handshake was answered with an HTTP error. */
  private refusal: HandshakeRefusal | undefined;
  private endedBecause = 'the session was stopped first';
  private exitWith: (code: number) => void = () => {};
  private readonly exited = new Promise<number>((resolve) => (this.exitWith = resolve));

  constructor(private readonly options: TerminalChatOptions) {
    this.format = new ChatFormatter(palette(options.colour));
    this.client = new ReconnectingClient({
      url: options.url,
      WebSocket: refusalReportingWebSocket((refusal) => (this.refusal = refusal)),
      clientId: options.clientId,
      room: options.room,
      reconnectDelayMs: options.reconnectDelayMs,
      reconnectAttempts: options.reconnectAttempts,
    });
    this.input = createInterface({
      input: process.stdin,
      output: this.interactive ? process.stdout : undefined,
      terminal: this.interactive,
      prompt: '> ',
    });
  }

  /**
   * Connects and runs until the session ends; resolves with the exit code, or
   * rejects with LinesNotSentError when stdin is not a terminal and some of its
   * lines never went out.
   */
  async run(): Promise<number> {
    this.client.on('state', (state) => this.onState(state));
    this.client.on('frame', (frame) => this.onFrame(frame));
    this.client.on('resume', (outcome) => this.print(this.format.resume(outcome)));
    this.input.on('line', (line) => this.onLine(line));
    this.input.on('close', () => this.onInputEnd());
    // With a terminal, readline turns Ctrl+C into its own SIGINT event; otherwise the signal reaches the process.
    const quit = () => this.quit();
    this.input.on('SIGINT', quit);
    process.on('SIGINT', quit);
    process.on('SIGTERM', quit);

    this.client.connect();
    if (this.interactive) this.input.prompt();
    const code = await this.exited;
    process.off('SIGINT', quit);
    process.off('SIGTERM', quit);
    const unsent = this.needed - this.delivered;
    if (!this.interactive && unsent > 0) throw new LinesNotSentError(unsent, this.endedBecause);
    return code;
  }

  private onState(state: ConnectionState): void {
    if (state.status !== 'open') this.welcomed = false;
    if (state.status === 'connecting' || state.status === 'open') this.refusal = undefined;
    if (!this.quitting) this.print(this.format.state(state, this.options.url, this.refusal));
    if (state.status === 'closed' && !this.quitting) {
      this.endedBecause = `the connection ended (${describeClose(state.code, state.reason)}) first`;
    }
    if (state.status === 'closed') this.finish(this.quitting || (!state.gaveUp && !FAILED_CLOSE_CODES.has(state.code)) ? 0 : 1);
    this.wakeWaiters();
  }

  private onFrame(frame: ChatFrame): void {
    if (frame.type === 'welcome' || frame.type === 'resumed') {
      this.me = frame.clientId;
      this.welcomed = true;
    } else if (frame.type === 'error' && this.unanswered.welcome > 0) {
      // The join was refused: the connection is still where it was, welcomed there.
      this.welcomed = true;
    }
    this.settleAnswer(frame);
    this.print(this.format.frame(frame, this.me));
    this.wakeWaiters();
  }

  private onLine(line: string): void {
    const command = parseChatInput(line);
    if (command.kind === 'quit') this.quitRead = true;
    else if (!this.quitRead && needsConnection(command)) this.needed += 1;
    this.lines = this.lines.then(() => (this.finished ? undefined : this.handle(command)));
    if (this.interactive) this.input.prompt();
  }

  private onInputEnd(): void {
    this.lines = this.lines.then(async () => {
      if (this.finished) return;
      await this.answers();
      if (!this.finished) this.quit();
    });
  }

  private async handle(command: ChatInput): Promise<void> {
    const { format } = this;
    switch (command.kind) {
      case 'empty':
        return;
      case 'help':
        return CHAT_COMMANDS_HELP.split('\n').forEach((line) => this.print(format.system(line)));
      case 'status':
        return this.print(format.system(this.describeStatus()));
      case 'clear':
        if (this.interactive) console.clear();
        return;
      case 'quit':
        return this.quit();
      case 'invalid':
        return this.print(format.error(command.message));
      case 'join':
        if (!isValidName(command.room)) return this.print(format.error('a room is 1-32 letters, digits, "_" or "-"'));
        break;
      default:
        break;
    }
    if (!(await this.ready())) return;
    const { client } = this;
    switch (command.kind) {
      case 'chat':
        return void this.sent(client.chat(command.text), 'chat');
      case 'private':
        if (this.sent(client.privateMessage(command.to, command.text))) this.print(format.ownPrivate(command.to, command.text));
        return;
      case 'join':
        // On API Gateway each frame is handled on its own, in any order: the lines before a join are
        // answered before it goes, and the line after it waits for the new room's welcome, so each is said where it was meant.
        await this.answers();
        if (this.sent(client.join(command.room), 'welcome')) this.welcomed = false;
        return;
      case 'users':
        return void this.sent(client.requestUsers(), 'users');
      case 'ping':
        if (!this.sent(client.isOpen)) return;
        return client.ping().then(
          (rtt) => this.print(format.system(`pong in ${rtt} ms`)),
          () => this.print(format.error('ping failed: the connection dropped')),
        );
    }
  }

  /** Notes the answer a sent frame is due, or says it could not be sent. */
  private sent(ok: boolean, answeredBy?: AnsweringFrame): boolean {
    if (!ok) {
      this.print(this.format.error('not sent: the connection dropped; try again once reconnected'));
      return false;
    }
    this.delivered += 1;
    if (answeredBy) this.unanswered[answeredBy] += 1;
    return true;
  }

  /** Counts `frame` as the answer to one line sent; an error frame answers whatever was due. */
  private settleAnswer(frame: ChatFrame): void {
    const { unanswered } = this;
    const answered = frame.type === 'error' ? ANSWERING_FRAMES.find((type) => unanswered[type] > 0) : ANSWERING_FRAMES.find((type) => type === frame.type);
    const ownAnswer = frame.type !== 'chat' || frame.clientId === this.me;
    if (answered && ownAnswer && unanswered[answered] > 0) unanswered[answered] -= 1;
    if (this.allAnswered()) this.answersWaiter?.();
  }

  /** Resolves once every line sent so far has been answered, or after DRAIN_TIMEOUT_MS. */
  private async answers(): Promise<void> {
    if (!this.allAnswered()) await withinMs(new Promise<void>((resolve) => (this.answersWaiter = resolve)), DRAIN_TIMEOUT_MS);
  }

  private allAnswered(): boolean {
    return ANSWERING_FRAMES.every((type) => this.unanswered[type] === 0);
  }

  /** Resolves true once the connection is up and welcomed, false if the session ends first. */
  private ready(): Promise<boolean> {
    if (this.finished) return Promise.resolve(false);
    if (this.client.isOpen && this.welcomed) return Promise.resolve(true);
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  private wakeWaiters(): void {
    const ready = this.client.isOpen && this.welcomed;
    if (!this.finished && !ready) return;
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const wake of waiters) wake(!this.finished);
  }

  private print(line: string | undefined): void {
    if (line === undefined) return;
    if (!this.interactive) return void process.stdout.write(`${line}\n`);
    // Print above what is being typed, then redraw the prompt with it.
    process.stdout.write(`\r\x1b[K${line}\n`);
    this.input.prompt(true);
  }

  private quit(): void {
    this.quitting = true;
    this.client.close('bye');
    this.finish(0);
  }

  private finish(code: number): void {
    if (this.finished) return;
    this.finished = true;
    this.wakeWaiters();
    // Leave the shell's prompt a line of its own, not the end of ours.
    if (this.interactive) process.stdout.write('\n');
    this.input.close();
    process.stdin.pause();
    this.exitWith(code);
  }

  private describeStatus(): string {
    const { client } = this;
    const { url } = this.options;
    const state = client.state;
    const who = `${client.clientId ? safeText(client.clientId) : '(no clientId yet)'} in ${safeText(client.room ?? 'lobby')}`;
    const rtt = client.lastRtt === undefined ? '' : `, last round trip ${client.lastRtt} ms`;
    switch (state.status) {
      case 'connecting':
        return `connecting to ${url} as ${who}`;
      case 'open':
        return `connected to ${url} as ${who}${rtt}`;
      case 'reconnecting':
        return `reconnecting to ${url} in ${Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000))} s (attempt ${state.attempt} of ${state.maxAttempts}) as ${who}`;
      case 'closed':
        return `closed (${state.code})`;
    }
  }
}

/** Waits for `promise` at most `ms`, whatever it does; the timer never outlives the wait. */
async function withinMs(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise.catch(() => {}), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
