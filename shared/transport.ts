/**
 * How the core reaches a connection: a socket on CloudBase, the @connections
 * management API on AWS.
 */
export type SendOutcome = 'sent' | 'gone';

export interface Transport {
  /** Sends one text frame. 'gone' means the connection no longer exists and should be forgotten. */
  send(connectionId: string, data: string): Promise<SendOutcome>;
  /**
   * Optional: sends one frame to many connections and resolves to the ids
   * that are gone. A transport that writes to its own sockets implements it
   * so a broadcast is one loop over the room, not a promise per recipient;
   * without it the core calls `send` with bounded concurrency.
   */
  sendMany?(connectionIds: readonly string[], data: string): Promise<string[]>;
  /** Closes the connection; its disconnect arrives through the platform as usual. */
  close(connectionId: string, code: number, reason: string): Promise<void>;
}
