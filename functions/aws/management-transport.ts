import {
  DeleteConnectionCommand,
  PostToConnectionCommand,
  type ApiGatewayManagementApiClient,
} from '@aws-sdk/client-apigatewaymanagementapi';
import type { SendOutcome, Transport } from '../../shared/transport.js';

/**
 * The Transport of the AWS target: API Gateway's @connections API. A
 * GoneException means the connection is no longer there ('gone', and the
 * core forgets it); any other error is thrown so the core logs it for that
 * recipient and carries on with the rest.
 */
export class ManagementApiTransport implements Transport {
  private readonly encoder = new TextEncoder();

  constructor(private readonly client: ApiGatewayManagementApiClient) {}

  async send(connectionId: string, data: string): Promise<SendOutcome> {
    try {
      await this.client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: this.encoder.encode(data) }));
      return 'sent';
    } catch (error) {
      if (isGone(error)) return 'gone';
      throw error;
    }
  }

  /**
   * DeleteConnection takes no close code or reason: API Gateway picks the
   * close frame itself. Its `$disconnect` then forgets the connection.
   */
  async close(connectionId: string, _code: number, _reason: string): Promise<void> {
    try {
      await this.client.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
    } catch (error) {
      if (!isGone(error)) throw error;
    }
  }
}

/** By name: the SDK names errors from `x-amzn-errortype`, and a bundle may hold more than one copy of its classes. */
export function isGone(error: unknown): boolean {
  return (error as { name?: unknown } | null)?.name === 'GoneException';
}
