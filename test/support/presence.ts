import type { TestClient } from './client.js';

/**
 * Resolves once `clientId` is in the listener's room: already there when the
 * listener asks, or joining after. Tells a reconnect to a restarted server
 * apart from a late one to the server that was stopping.
 */
export async function untilPresent(listener: TestClient, clientId: string, timeoutMs = 20_000): Promise<void> {
  listener.send({ type: 'users' });
  const users = await listener.next('users', timeoutMs);
  if ((users.users as string[]).includes(clientId)) return;
  await listener.next((frame) => frame.type === 'user_joined' && frame.clientId === clientId, timeoutMs);
}
