/**
 * The protocol's own routes, which every app gets unless it opts out
 * (`App.coreRoutes`) or defines a route of the same name: liveness (`ping`),
 * rooms (`join`) and presence (`users`). They live here, apart from any app,
 * because the core owns connections and rooms.
 */
import { route, type Route } from './app.js';
import { InvalidRoomError } from './errors.js';
import { normalizeName } from './names.js';
import { isValidName, stringField } from './protocol.js';

export const coreRoutes = {
  ping: route({
    parse: () => undefined,
    handle: (ctx) => ctx.reply({ type: 'pong' }),
  }),
  join: route({
    parse: (fields) => {
      const room = normalizeName(stringField(fields, 'room'));
      if (!isValidName(room)) throw new InvalidRoomError();
      return room;
    },
    handle: (ctx, room) => ctx.joinRoom(room),
  }),
  users: route({
    parse: () => undefined,
    handle: async (ctx) => {
      const { room } = ctx.connection;
      const members = await ctx.listRoom(room);
      await ctx.reply({ type: 'users', room, users: members.map((m) => m.clientId).sort(), onlineCount: members.length });
    },
  }),
} satisfies Record<string, Route<any>>;

export type CoreRouteName = keyof typeof coreRoutes;
export const CORE_ROUTE_NAMES = Object.keys(coreRoutes) as CoreRouteName[];

/** The routes the engine dispatches to: the chosen core routes, then the app's own, which win on a name clash. */
export function resolveRoutes(app: { routes?: Readonly<Record<string, Route<any>>>; coreRoutes?: boolean | readonly CoreRouteName[] }): Readonly<Record<string, Route<any>>> {
  const chosen = app.coreRoutes === false ? [] : app.coreRoutes === true || app.coreRoutes === undefined ? CORE_ROUTE_NAMES : app.coreRoutes;
  const routes: Record<string, Route<any>> = Object.create(null);
  for (const name of chosen) routes[name] = coreRoutes[name];
  for (const [name, definition] of Object.entries(app.routes ?? {})) routes[name] = definition;
  return routes;
}
