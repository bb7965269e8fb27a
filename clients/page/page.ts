/**
 * The browser chat page. Bundled by scripts/page.ts into one HTML document, so
 * it works served by a target or opened from disk. Everything a user or the
 * server wrote reaches the DOM through textContent, never as markup, and in
 * an element of its own that isolates its direction (`isolated`), so a
 * bidirectional control inside it (U+202E …) cannot reorder what is around it.
 */
import { isValidName } from '../../shared/protocol.js';
import { CHAT_COMMANDS_HELP, parseChatInput } from '../chat-input.js';
import {
  InvalidServerUrlError,
  ReconnectingClient,
  SESSION_REPLACED_CLOSE_CODE,
  type ChatFrame,
  type ConnectionState,
  type ResumeOutcome,
} from '../reconnecting-client.js';

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

const ui = {
  status: element('status'),
  online: element('online'),
  rtt: element('rtt'),
  connection: element<HTMLFormElement>('connection'),
  url: element<HTMLInputElement>('url'),
  clientId: element<HTMLInputElement>('clientId'),
  room: element<HTMLInputElement>('room'),
  connect: element<HTMLButtonElement>('connect'),
  conversation: element('messages').parentElement!,
  messages: element<HTMLOListElement>('messages'),
  roomName: element('roomName'),
  users: element<HTMLUListElement>('users'),
  composer: element<HTMLFormElement>('composer'),
  recipient: element<HTMLSelectElement>('recipient'),
  text: element<HTMLInputElement>('text'),
  send: element<HTMLButtonElement>('send'),
  ping: element<HTMLButtonElement>('ping'),
  clear: element<HTMLButtonElement>('clear'),
};

/** Page address parameters fill the form (`?url=&clientId=&room=`) and tune reconnection (`reconnectDelay` in s, `reconnectAttempts`). */
const params = new URLSearchParams(location.search);

let client: ReconnectingClient | undefined;
let me: string | undefined;
let members: string[] = [];
/** `users` replies the person asked for with /users; the page's own refreshes are not printed. */
let usersRequestsToShow = 0;
let countdown: ReturnType<typeof setInterval> | undefined;
/**
 * The items shown for the current room's seq'd frames, in seq order. A frame
 * that arrives late (on AWS frames can overtake each other) is put where its
 * seq belongs.
 */
let sequenced: { room: string | undefined; items: Array<{ seq: number; item: HTMLLIElement }> } = { room: undefined, items: [] };

ui.url.value = params.get('url') ?? defaultServerUrl();
ui.clientId.value = params.get('clientId') ?? '';
ui.room.value = params.get('room') ?? '';

/** The `cloudsocket-url` meta tag (set by the server that serves the page), else the page's own address, else the local CloudBase target. */
function defaultServerUrl(): string {
  const configured = document.querySelector<HTMLMetaElement>('meta[name="cloudsocket-url"]')?.content;
  if (configured) return configured;
  if (location.protocol === 'http:' || location.protocol === 'https:') {
    return location.origin.replace(/^http/, 'ws') + location.pathname.replace(/index\.html$/, '');
  }
  return 'ws://127.0.0.1:9000/';
}

function numberParam(name: string, scale: number): number | undefined {
  const value = Number(params.get(name) ?? NaN);
  return Number.isFinite(value) && value >= 0 ? Math.round(value * scale) : undefined;
}

function connect(): void {
  const clientId = ui.clientId.value.trim();
  const room = ui.room.value.trim();
  if (clientId && !isValidName(clientId)) return showSystem('Client ID: 1-32 letters, digits, "_" or "-"', true);
  if (room && !isValidName(room)) return showSystem('Room: 1-32 letters, digits, "_" or "-"', true);
  try {
    client = new ReconnectingClient({
      url: ui.url.value,
      WebSocket,
      clientId,
      room,
      reconnectDelayMs: numberParam('reconnectDelay', 1000),
      reconnectAttempts: numberParam('reconnectAttempts', 1),
    });
  } catch (error) {
    if (error instanceof InvalidServerUrlError) return showSystem(error.message, true);
    throw error;
  }
  client.on('state', showState);
  client.on('frame', showFrame);
  client.on('resume', showResume);
  client.on('rtt', (rtt) => (ui.rtt.textContent = ` · ${rtt} ms`));
  client.connect();
}

function showState(state: ConnectionState): void {
  clearInterval(countdown);
  const active = state.status !== 'closed';
  ui.connect.textContent = active ? 'Disconnect' : 'Connect';
  ui.connect.classList.toggle('primary', !active);
  ui.send.disabled = ui.ping.disabled = state.status !== 'open';
  ui.status.dataset.status = state.status;
  for (const input of [ui.url, ui.clientId, ui.room]) input.disabled = active;

  switch (state.status) {
    case 'connecting':
      ui.status.textContent = state.attempt === 0 ? 'connecting…' : `reconnecting (attempt ${state.attempt})…`;
      break;
    case 'open':
      ui.status.textContent = 'open';
      break;
    case 'reconnecting': {
      showSystem(`Connection lost (${describeClose(state.code, state.reason)}); reconnecting in ${seconds(state.delayMs)} s, attempt ${state.attempt} of ${state.maxAttempts}`);
      const tick = () => (ui.status.textContent = `reconnecting in ${Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000))} s`);
      tick();
      countdown = setInterval(tick, 250);
      break;
    }
    case 'closed':
      ui.status.textContent = 'closed';
      ui.rtt.textContent = '';
      setMembers([]);
      showSystem(describeEnd(state), state.gaveUp || state.code !== 1000);
      break;
  }
}

function describeEnd(state: Extract<ConnectionState, { status: 'closed' }>): string {
  const close = describeClose(state.code, state.reason);
  if (state.gaveUp) return `Gave up reconnecting (${close})`;
  if (state.code === SESSION_REPLACED_CLOSE_CODE) return `Disconnected (${close}): another connection resumed this session, so this one does not come back`;
  return `Disconnected (${close})`;
}

function showFrame(frame: ChatFrame): void {
  if ('onlineCount' in frame && typeof frame.onlineCount === 'number') ui.online.textContent = String(frame.onlineCount);
  switch (frame.type) {
    case 'welcome':
      if (frame.room !== sequenced.room) sequenced = { room: frame.room, items: [] };
      showIdentity(frame.clientId, frame.room);
      showSystem(frame.message);
      client?.requestUsers();
      break;
    case 'resumed':
      // Presence may have changed while away; the notice comes with the resume event, once the missed frames are shown.
      showIdentity(frame.clientId, frame.room);
      client?.requestUsers();
      break;
    case 'resume_failed':
      // The server starts afresh: the welcome that follows begins a new numbering.
      sequenced = { room: undefined, items: [] };
      break;
    case 'chat':
      showMessage({ from: frame.clientId, text: frame.message, time: frame.timestamp, own: frame.clientId === me }, seqInRoom(frame.seq, frame.room));
      break;
    case 'private':
      showMessage({ from: frame.clientId, text: frame.message, time: frame.timestamp, own: false, privateTo: frame.to }, seqInRoom(frame.seq));
      break;
    case 'user_joined':
    case 'user_left':
      showSystem(frame.message, false, seqInRoom(frame.seq, frame.room));
      client?.requestUsers();
      break;
    case 'users':
      setMembers(frame.users);
      if (usersRequestsToShow > 0) {
        usersRequestsToShow -= 1;
        showSystem(`In ${frame.room} (${frame.onlineCount}): ${frame.users.join(', ')}`);
      }
      break;
    case 'error':
      // The message may quote what was sent (a type, a name); the code must still read as the code.
      showSystem([isolated(frame.message), ` (${frame.code})`], true);
      break;
    case 'pong':
      break;
  }
}

function showIdentity(clientId: string, room: string): void {
  me = clientId;
  // Reconnecting by hand later should come back as the same person in the same room.
  ui.clientId.value = client?.identity ?? clientId;
  ui.room.value = room;
  ui.roomName.textContent = room;
}

function showResume(outcome: ResumeOutcome): void {
  if (!outcome.resumed) return showSystem(`Could not resume (${outcome.code}): ${outcome.message}; continuing as a new session`, true);
  const { delivered } = outcome;
  showSystem(delivered === 0 ? 'Resumed: nothing missed' : `Resumed: ${delivered} missed ${delivered === 1 ? 'message' : 'messages'} shown`);
}

/** The seq to place a frame by, when it belongs to the room on screen (a late frame of a room left is just appended). */
function seqInRoom(seq: number | undefined, room = sequenced.room): number | undefined {
  return room === sequenced.room ? seq : undefined;
}

function describeClose(code: number, reason: string): string {
  return reason ? `${code} ${reason}` : String(code);
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(ms < 10_000 ? 1 : 0);
}

function setMembers(users: string[]): void {
  members = users;
  const chosen = ui.recipient.value;
  ui.users.replaceChildren(
    ...users.map((user) => {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = user;
      button.title = user === me ? 'you' : `private message to ${user}`;
      if (user === me) button.className = 'me';
      else button.setAttribute('aria-pressed', String(user === chosen));
      button.addEventListener('click', () => user !== me && chooseRecipient(user));
      item.append(button);
      return item;
    }),
  );
  const everyone = new Option('Everyone', '');
  const others = users.filter((user) => user !== me).map((user) => new Option(`Private to ${user}`, user));
  ui.recipient.replaceChildren(everyone, ...others);
  ui.recipient.value = users.includes(chosen) ? chosen : '';
}

function chooseRecipient(user: string): void {
  ui.recipient.value = ui.recipient.value === user ? '' : user;
  setMembers(members);
  ui.text.focus();
}

interface ShownMessage {
  from: string;
  text: string;
  time: string;
  own: boolean;
  privateTo?: string;
}

function showMessage(message: ShownMessage, seq?: number): void {
  const item = document.createElement('li');
  item.className = message.own ? 'own' : 'others';
  if (message.privateTo !== undefined) item.classList.add('private');
  const head = document.createElement('div');
  head.className = 'head';
  const from = isolated(message.own ? 'you' : message.from);
  from.className = 'from';
  head.append(from);
  if (message.privateTo !== undefined) {
    const label = document.createElement('span');
    if (message.own) label.append('private to ', isolated(message.privateTo));
    else label.textContent = 'private';
    head.append(label);
  }
  const time = document.createElement('time');
  time.dateTime = message.time;
  time.textContent = clock(message.time);
  head.append(time);
  const body = document.createElement('div');
  body.className = 'text';
  // Each line takes the direction of its first strong letter (page.css), so a message in Arabic reads right to left.
  body.dir = 'auto';
  body.textContent = message.text;
  item.append(head, body);
  place(item, seq);
}

function showSystem(text: string | Array<string | Node>, isError = false, seq?: number): void {
  const item = document.createElement('li');
  item.className = isError ? 'system error' : 'system';
  item.append(...(typeof text === 'string' ? [text] : text));
  place(item, seq);
}

/** Text in a <bdi>: its direction comes from its own letters, and its controls end where it ends. */
function isolated(text: string): HTMLElement {
  const element = document.createElement('bdi');
  element.textContent = text;
  return element;
}

/**
 * Shows an item: at the end, or, with a seq, before the first item of a
 * higher seq. Repeats never get here (the client drops them); nor does a seq
 * once the room's numbering proved unable to order (two frames under one seq).
 */
function place(item: HTMLLIElement, seq: number | undefined): void {
  if (seq === undefined || !client?.seqOrderTrusted) return append(item);
  item.dataset.seq = String(seq);
  const { items } = sequenced;
  let index = items.length;
  while (index > 0 && items[index - 1]!.seq > seq) index -= 1;
  const next = items[index]?.item;
  items.splice(index, 0, { seq, item });
  if (next?.isConnected) ui.messages.insertBefore(item, next);
  else append(item);
}

function clearMessages(): void {
  ui.messages.replaceChildren();
  sequenced = { room: sequenced.room, items: [] };
}

function append(item: HTMLLIElement): void {
  const view = ui.conversation;
  const atBottom = view.scrollHeight - view.scrollTop - view.clientHeight < 40;
  ui.messages.append(item);
  if (atBottom) view.scrollTop = view.scrollHeight;
}

function clock(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function ping(): void {
  if (!client) return;
  client.ping().then(
    (rtt) => showSystem(`Pong in ${rtt} ms`),
    () => showSystem('Ping failed: not connected', true),
  );
}

function describeState(): string {
  const state = client?.state;
  if (!client || !state || state.status === 'closed') return 'Not connected';
  const rtt = client.lastRtt === undefined ? '' : `, last round trip ${client.lastRtt} ms`;
  return `${state.status} to ${ui.url.value} as ${client.clientId ?? '(not yet assigned)'} in ${client.room ?? 'lobby'}${rtt}`;
}

function submitComposer(): void {
  const line = ui.text.value;
  const input = parseChatInput(line);
  const sent = (ok: boolean) => {
    if (ok) ui.text.value = '';
    else showSystem('Not connected: nothing was sent', true);
  };
  switch (input.kind) {
    case 'empty':
      return;
    case 'chat':
      if (ui.recipient.value) return sendPrivate(ui.recipient.value, input.text, sent);
      return sent(client?.chat(input.text) ?? false);
    case 'private':
      return sendPrivate(input.to, input.text, sent);
    case 'join':
      if (!isValidName(input.room)) return showSystem('Room: 1-32 letters, digits, "_" or "-"', true);
      return sent(client?.join(input.room) ?? false);
    case 'users':
      usersRequestsToShow += 1;
      return sent(client?.requestUsers() ?? false);
    case 'ping':
      ui.text.value = '';
      return ping();
    case 'status':
      ui.text.value = '';
      return showSystem(describeState());
    case 'clear':
      ui.text.value = '';
      return clearMessages();
    case 'quit':
      ui.text.value = '';
      return client?.close();
    case 'help':
      ui.text.value = '';
      return showSystem(CHAT_COMMANDS_HELP);
    case 'invalid':
      return showSystem(input.message, true);
  }
}

function sendPrivate(to: string, text: string, sent: (ok: boolean) => void): void {
  const ok = client?.privateMessage(to, text) ?? false;
  sent(ok);
  // The server does not echo private messages to their sender; show it here.
  if (ok) showMessage({ from: me ?? '', text, time: new Date().toISOString(), own: true, privateTo: to });
}

ui.connection.addEventListener('submit', (event) => {
  event.preventDefault();
  if (client && client.state.status !== 'closed') client.close();
  else connect();
});
ui.composer.addEventListener('submit', (event) => {
  event.preventDefault();
  submitComposer();
});
ui.recipient.addEventListener('change', () => setMembers(members));
ui.ping.addEventListener('click', ping);
ui.clear.addEventListener('click', clearMessages);
