/**
 * A room counter: everyone in a room adds to one tally and hears each
 * addition; `count` tells who is here. Connections need `?token=` equal to
 * COUNTER_TOKEN when that variable is set.
 */
import { defineApp, InvalidMessageError, route } from 'cloudsocket';

const add = route({
  parse: (fields) => {
    const by = fields.by;
    if (typeof by !== 'number' || !Number.isInteger(by) || by < 1 || by > 100) {
      throw new InvalidMessageError('"by" must be a whole number from 1 to 100');
    }
    return by;
  },
  handle: (ctx, by) =>
    ctx.broadcast(ctx.connection.room, { type: 'added', by, clientId: ctx.connection.clientId, name: String(ctx.connection.identity.name ?? '') }),
});

const count = route({
  parse: () => undefined,
  handle: async (ctx) => {
    const members = await ctx.listRoom(ctx.connection.room);
    await ctx.reply({ type: 'count', room: ctx.connection.room, online: members.length });
  },
});

export default defineApp({
  name: 'counter',
  authenticate: ({ query }) => {
    const required = process.env.COUNTER_TOKEN;
    if (required && query.token !== required) return { allow: false, reason: 'a valid token is required' };
    return { allow: true, identity: { name: query.name ?? 'anonymous' } };
  },
  // ping, join and users come from the core; `add` and `count` are this app's.
  routes: { add, count },
  presenceText: {
    welcome: ({ room, onlineCount }) => `${onlineCount} counting in ${room}`,
  },
});
