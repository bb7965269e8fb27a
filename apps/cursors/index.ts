/**
 * Shared cursors, written with the public app API only: each member's
 * pointer is kept in its room's state under its clientId, so a newcomer is
 * shown where everyone is, whichever process set it. On AWS that is the
 * point: moves are stored by the message function, read by the welcome
 * function for the newcomer, and removed by the disconnect function.
 *
 *   client → {"type":"move","x":0.25,"y":0.5}   (fractions of the page, 0..1)
 *   server → {"type":"cursors","room":…,"cursors":{clientId:{x,y},…}}   to a newcomer, and after a join
 *            {"type":"cursor","clientId":…,"x":…,"y":…}                to the others at each move
 *            {"type":"cursor_gone","clientId":…}                       once a member who left (or joined
 *                                                                       another room) is out of the state
 */
import { coreRoutes, defineApp, InvalidMessageError, route, type App, type Context, type RoomState } from '../../shared/index.js';

export interface Cursor {
  x: number;
  y: number;
}

function coordinate(fields: Readonly<Record<string, unknown>>, name: 'x' | 'y'): number {
  const value = Object.hasOwn(fields, name) ? fields[name] : undefined;
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) throw new InvalidMessageError(`"${name}" must be a number from 0 to 1`);
  return value;
}

async function sendCursors(ctx: Context, room: string, state: RoomState): Promise<void> {
  await ctx.reply({ type: 'cursors', room, cursors: await state.list() });
}

async function removeCursor(ctx: Context): Promise<void> {
  const { clientId, connectionId, room } = ctx.connection;
  if (await ctx.state.delete(clientId)) await ctx.broadcast(room, { type: 'cursor_gone', clientId }, { except: connectionId });
}

const move = route({
  parse: (fields): Cursor => ({ x: coordinate(fields, 'x'), y: coordinate(fields, 'y') }),
  handle: async (ctx, cursor) => {
    const { clientId, connectionId, room } = ctx.connection;
    await ctx.state.set(clientId, { x: cursor.x, y: cursor.y });
    await ctx.broadcast(room, { type: 'cursor', clientId, x: cursor.x, y: cursor.y }, { except: connectionId });
  },
});

/** The core's join, taking the cursor out of the room left and showing the newcomer the cursors of the room entered. */
const join = route({
  parse: coreRoutes.join.parse,
  handle: async (ctx, room) => {
    const moving = room !== ctx.connection.room;
    if (moving) await removeCursor(ctx);
    await ctx.joinRoom(room);
    if (moving) await sendCursors(ctx, room, ctx.roomState(room));
  },
});

export function createCursorsApp(): App {
  return defineApp({
    name: 'cursors',
    routes: { move, join },
    onConnect: (ctx) => sendCursors(ctx, ctx.connection.room, ctx.state),
    onDisconnect: removeCursor,
  });
}
