/**
 * How instances that share a registry reach each other's sockets. Only the
 * instance that owns a socket can write to it (CloudBase) or tell that it is
 * gone, so a frame for a connection owned elsewhere is handed to its owner
 * through the backplane. The core defines the interface and imports no bus;
 * registries/redis-backplane.ts is one implementation.
 */

/** What one instance asks another to do with sockets the other owns. */
export type BackplaneMessage =
  | { kind: 'deliver'; connectionIds: readonly string[]; data: string }
  /** To every instance: deliver to your own members of `room`, except `except`. */
  | { kind: 'room'; room: string; data: string; except?: string }
  | { kind: 'close'; connectionId: string; code: number; reason: string };

export interface Backplane {
  /**
   * Hands `message` to instance `instanceId`. Resolves once the bus has taken
   * it, not when it was delivered: a live frame is not worth a round trip to
   * confirm. A bus that is unreachable drops it (and logs), never throws.
   */
  publish(instanceId: string, message: BackplaneMessage): Promise<void>;
  /** Hands `message` to every other instance subscribed, on the same terms as publish. */
  publishToAll(message: BackplaneMessage): Promise<void>;
  /** Starts handing every message addressed to `instanceId`, or to all, to `handler`. */
  subscribe(instanceId: string, handler: (message: BackplaneMessage) => void): Promise<void>;
  close(): Promise<void>;
}

/** Which instance owns a room member; undefined when any instance's transport reaches it (AWS). */
export interface RoomMember {
  connectionId: string;
  owner?: string;
}
