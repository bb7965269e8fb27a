/**
 * The @connections management API at /{stage}/@connections/{connectionId}
 * (`@` also as `%40`, the id URL-encoded as the SDK sends it): POST sends a
 * frame, GET describes the connection, DELETE closes it. A connection whose
 * `$connect` has not returned yet is as gone as one that closed: 410.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../shared/log.js';
import { readBody, sendAwsError, sendJson } from './aws-responses.js';
import type { Chaos } from './chaos.js';
import { refusalMessage, type AccessControl } from './credentials.js';
import { MAX_MESSAGE_BYTES, type Gateway } from './gateway.js';

export class ManagementApi {
  constructor(
    private readonly gateway: Gateway,
    private readonly stage: string,
    private readonly logger: Logger,
    private readonly access: AccessControl,
    /** arn:aws:execute-api:REGION:ACCOUNT:API_ID, the prefix of what ManageConnections is allowed on. */
    private readonly apiArn: string,
    private readonly chaos: Chaos,
  ) {}

  /** The connection id when `pathname` (still encoded) is a management path; undefined otherwise. */
  connectionIdOf(pathname: string): { stage: string; connectionId: string } | undefined {
    const segments = pathname.split('/');
    if (segments.length !== 4 || segments[0] !== '') return undefined;
    try {
      const [, stage, resource, id] = segments.map((segment) => decodeURIComponent(segment));
      if (resource !== '@connections' || !id) return undefined;
      return { stage: stage!, connectionId: id };
    } catch {
      return undefined;
    }
  }

  async handle(req: IncomingMessage, res: ServerResponse, target: { stage: string; connectionId: string }): Promise<void> {
    const { connectionId } = target;
    // The signature covers the body, so it is read first (only POST has one).
    const data = await readBody(req, MAX_MESSAGE_BYTES);
    if (data === undefined) return sendAwsError(res, 413, 'PayloadTooLargeException', 'Message too long');
    if (!req.headers.authorization) return sendAwsError(res, 403, 'ForbiddenException', 'Missing Authentication Token');
    const resource = `${this.apiArn}/${target.stage}/${req.method}/@connections/${connectionId}`;
    const refusal = this.access.check(req, data, 'execute-api', [{ action: 'execute-api:ManageConnections', resource }]);
    if (refusal?.kind === 'signature') return sendAwsError(res, 403, 'ForbiddenException', refusal.failure.message);
    if (refusal) return sendAwsError(res, 403, 'ForbiddenException', refusalMessage(refusal, false));
    if (target.stage !== this.stage) return sendAwsError(res, 403, 'ForbiddenException', 'Forbidden');
    // The account-wide callback quota; the SDK retries this one with backoff, as it does against AWS.
    if (!this.chaos.allowsCallback()) return sendAwsError(res, 429, 'LimitExceededException', 'Rate exceeded');

    switch (req.method) {
      case 'POST': {
        if (!this.gateway.post(connectionId, data)) return gone(res, connectionId);
        return sendJson(res, 200, undefined);
      }
      case 'GET': {
        const connection = this.gateway.connections.get(connectionId);
        if (!connection || connection.state !== 'open') return gone(res, connectionId);
        // The wire names are camelCase; the SDK maps them to ConnectedAt, Identity, LastActiveAt.
        return sendJson(res, 200, {
          connectedAt: new Date(connection.facts.connectedAt).toISOString(),
          identity: { sourceIp: connection.facts.sourceIp, userAgent: connection.facts.userAgent },
          lastActiveAt: new Date(connection.lastActiveAt).toISOString(),
        });
      }
      case 'DELETE': {
        if (!this.gateway.delete(connectionId)) return gone(res, connectionId);
        this.logger.debug('connection_deleted', { connectionId });
        res.writeHead(204).end();
        return;
      }
      default:
        return sendAwsError(res, 403, 'ForbiddenException', 'Missing Authentication Token');
    }
  }
}

function gone(res: ServerResponse, connectionId: string): void {
  sendAwsError(res, 410, 'GoneException', `connection ${connectionId} is gone`, {});
}
