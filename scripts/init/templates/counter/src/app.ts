/**
 * A room counter: everyone in a room adds to one total and hears each
 * addition with the new total; `count` tells the total and who is here.
 * The total is room state (`ctx.state`), which every process serving the
 * room shares: a variable in this module would be one count per CloudBase
 * instance, and none at all across the Lambda functions on AWS.
 * Connections need `?token=` equal to COUNTER_TOKEN when that variable is set.
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
  handle: async (ctx, by) => {
    // One atomic step however many connections add at once: no addition is lost.
    const total = await ctx.state.increment('count', by);
    await ctx.broadcast(ctx.connection.room, { type: 'added', by, total, clientId: ctx.connection.clientId, name: String(ctx.connection.identity.name ?? '') });
  },
});

const count = route({
  parse: () => undefined,
  handle: async (ctx) => {
    const [members, total] = await Promise.all([ctx.listRoom(ctx.connection.room), ctx.state.get('count')]);
    await ctx.reply({ type: 'count', room: ctx.connection.room, online: members.length, total: total ?? 0 });
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
