/**
 * How the core reaches a connection: a socket on CloudBase, the @connections
 * management API on AWS.
 */
export type SendOutcome = 'sent' | 'gone';

export interface Transport {
  /** Sends one text frame. 'gone' means the connection no longer exists and should be forgotten. */
  send(connectionId: string, data: string): Promise<SendOutcome>;
  /** Closes the connection; its disconnect arrives through the platform as usual. */
  close(connectionId: string, code: number, reason: string): Promise<void>;
}
