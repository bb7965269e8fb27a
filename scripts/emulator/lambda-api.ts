/**
 * Lambda's Invoke API (POST /2015-03-31/functions/{name}/invocations), the
 * endpoint AWS_ENDPOINT_URL_LAMBDA points the handlers' SDK at. `Event`
 * answers 202 and runs the function afterwards, `RequestResponse` runs it and
 * answers with its result (a failure is still 200, flagged by
 * X-Amz-Function-Error, as Lambda does), `DryRun` only checks. Like Lambda,
 * it answers nothing but a 403 to a request not signed with a function's
 * credentials or the operator's (the port is reachable by anyone who can
 * reach the WebSocket API, and an invocation can act as any connection), and
 * AccessDeniedException when the caller's role does not allow
 * lambda:InvokeFunction on that function.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../shared/log.js';
import { readBody, sendAwsError, sendJson } from './aws-responses.js';
import { refusalMessage, type AccessControl } from './credentials.js';
import type { LambdaRuntime } from './lambda-runtime.js';

/** Lambda's payload limits: asynchronous and synchronous invocations. */
const MAX_EVENT_PAYLOAD = 256 * 1024;
const MAX_SYNC_PAYLOAD = 6 * 1024 * 1024;

const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;

export class LambdaApi {
  constructor(
    private readonly runtime: LambdaRuntime,
    private readonly region: string,
    private readonly accountId: string,
    private readonly access: AccessControl,
    private readonly logger: Logger,
  ) {}

  /** The function named in an Invoke path; undefined for any other path. */
  functionOf(pathname: string): string | undefined {
    const match = INVOKE_PATH.exec(pathname);
    if (!match) return undefined;
    try {
      return decodeURIComponent(match[1]!);
    } catch {
      return undefined;
    }
  }

  async handle(req: IncomingMessage, res: ServerResponse, requested: string): Promise<void> {
    // The signature covers the body, so the body is read first (up to the larger of the two limits).
    const body = await readBody(req, MAX_SYNC_PAYLOAD);
    if (body === undefined) return sendAwsError(res, 413, 'RequestEntityTooLargeException', `Request must be smaller than ${MAX_SYNC_PAYLOAD} bytes for the RequestResponse invocation type`);
    const name = this.runtime.resolve(requested);
    const arn = requested.startsWith('arn:') ? requested : `arn:aws:lambda:${this.region}:${this.accountId}:function:${name ?? requested}`;
    // Lambda authorizes before it looks the function up: a caller not allowed to invoke it learns nothing of it.
    const refusal = this.access.check(req, body, 'lambda', [{ action: 'lambda:InvokeFunction', resource: arn }]);
    if (refusal?.kind === 'signature') return sendAwsError(res, refusal.failure.status, refusal.failure.errorType, refusal.failure.message);
    if (refusal) {
      const message = refusalMessage(refusal);
      return sendAwsError(res, 403, 'AccessDeniedException', message, { Type: 'User', Message: message });
    }
    if (req.method !== 'POST') return sendAwsError(res, 405, 'MethodNotAllowedException', 'only POST invokes a function');
    if (!name) return sendAwsError(res, 404, 'ResourceNotFoundException', `Function not found: ${arn}`, { Type: 'User', Message: `Function not found: ${arn}` });
    const invocationType = String(req.headers['x-amz-invocation-type'] ?? 'RequestResponse');
    if (!['Event', 'RequestResponse', 'DryRun'].includes(invocationType)) {
      return sendAwsError(res, 400, 'InvalidParameterValueException', `InvocationType ${invocationType} is not one of Event, RequestResponse, DryRun`);
    }
    const limit = invocationType === 'Event' ? MAX_EVENT_PAYLOAD : MAX_SYNC_PAYLOAD;
    if (body.length > limit) {
      return sendAwsError(res, 413, 'RequestEntityTooLargeException', `Request must be smaller than ${limit} bytes for the ${invocationType} invocation type`);
    }
    let event: unknown = {};
    if (body.length > 0) {
      try {
        event = JSON.parse(body.toString('utf8'));
      } catch {
        return sendAwsError(res, 400, 'InvalidRequestContentException', 'Could not parse request body into json');
      }
    }
    if (invocationType === 'DryRun') {
      res.writeHead(204).end();
      return;
    }
    if (invocationType === 'Event') {
      this.runtime.invokeLater(name, event);
      res.writeHead(202, { 'content-length': '0' }).end();
      return;
    }
    const outcome = await this.runtime.invoke(name, event);
    if (outcome.ok) return sendJson(res, 200, outcome.result, { 'x-amz-executed-version': '$LATEST' });
    return sendJson(res, 200, outcome.error, { 'x-amz-executed-version': '$LATEST', 'x-amz-function-error': 'Unhandled' });
  }
}
