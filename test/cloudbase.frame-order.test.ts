/**
 * A connection's frames are handled in the order it sent them on the
 * CloudBase target, where one process holds the socket: a chat sent right
 * after a `join`, without waiting for the new room's welcome, goes to the new
 * room, and an app route that moves rooms is done before the next route runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineApp, route } from '../shared/app.js';
import { TestClient, uniqueName, withQuery } from './support/client.js';
import { startSourceServer, type SourceServer } from './support/servers.js';

let chat: SourceServer;
let mover: SourceServer;

/** An app whose `go` route moves rooms and whose `where` route answers where it runs. */
const movingApp = defineApp({
  name: 'mover',
  routes: {
    go: route({
      parse: (fields) => String(fields.room),
      handle: async (ctx, room) => ctx.joinRoom(room),
    }),
    where: route({
      parse: () => undefined,
      handle: async (ctx) => ctx.reply({ type: 'here', room: ctx.connection.room }),
    }),
  },
});

beforeAll(async () => {
  [chat, mover] = await Promise.all([startSourceServer({ RATE_LIMIT: '10000', RATE_BURST: '10000' }), startSourceServer({}, movingApp)]);
});

afterAll(async () => {
  await Promise.all([chat?.stop(), mover?.stop()]);
});

describe('frame order on the CloudBase target', () => {
  it('sends a chat that follows a join at once to the room joined, every time', async () => {
    for (let round = 0; round < 10; round++) {
      const [from, to] = [uniqueName('from'), uniqueName('to')];
      const left = await TestClient.join(withQuery(chat.url, { room: from, clientId: uniqueName('left') }));
      const ahead = await TestClient.join(withQuery(chat.url, { room: to, clientId: uniqueName('ahead') }));
      const moving = await TestClient.join(withQuery(chat.url, { room: from, clientId: uniqueName('moving') }));
      await left.client.next('user_joined');
      const marker = uniqueName('after-join');
      // Sent back to back: the chat reaches the server before the join has been handled.
      moving.client.send({ type: 'join', room: to });
      moving.client.send({ type: 'chat', content: marker });
      expect(await ahead.client.next((frame) => frame.type === 'chat')).toMatchObject({ message: marker, room: to });
      expect(await moving.client.next((frame) => frame.type === 'chat')).toMatchObject({ message: marker, room: to });
      // The old room hears the move, and after it, nothing of the chat.
      await left.client.next('user_left');
      left.client.send({ type: 'chat', content: 'still here' });
      expect((await left.client.next('chat')).message).toBe('still here');
      for (const client of [left.client, ahead.client, moving.client]) await client.close();
    }
  });

  it('finishes an app route that moves rooms before the next route of the same connection runs', async () => {
    for (let round = 0; round < 10; round++) {
      const target = uniqueName('target');
      const { client } = await TestClient.join(withQuery(mover.url, { room: uniqueName('start') }));
      client.send({ type: 'go', room: target });
      client.send({ type: 'where' });
      expect(await client.next('here')).toMatchObject({ room: target });
      await client.close();
    }
  });
});
