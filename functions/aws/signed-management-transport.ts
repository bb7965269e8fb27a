/**
 * The @connections API without the SDK client around it: each
 * PostToConnection is one HTTP request on a keep-alive socket, signed as the
 * SDK's own SigV4 signer (@smithy/signature-v4) signs it, by a signer made
 * for these requests alone (request-signer.ts). Through the client, its
 * middleware stack costs several times the signing per call, which at a
 * fan-out of 1000 members is most of the handler's CPU time. The errors are the
 * client's: 410 GoneException is 'gone'; 429 LimitExceededException and 5xx
 * are retried with the SDK's standard backoff (3 attempts, exponential with
 * full jitter from 100 ms); anything else (413 PayloadTooLargeException, 403
 * ForbiddenException) is thrown, named by `x-amzn-errortype` as the SDK names it.
 */
import http from 'node:http';
import https from 'node:https';
import { CloudsocketError } from '../../shared/errors.js';
import type { SendOutcome, Transport } from '../../shared/transport.js';
import { credentialsFromEnvironment, type EnvironmentCredentials } from './environment-credentials.js';
import { RequestSigner, uriEscape } from './request-signer.js';

export interface SignedManagementTransportOptions {
  /** `https://{domainName}/{stage}`, or where AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI points. */
  endpoint: string;
  region: string;
  /** Default: the environment's (where Lambda puts the function's). */
  credentials?: () => Promise<EnvironmentCredentials>;
  /** Sockets kept open to the endpoint: the fan-out's concurrency. */
  maxSockets: number;
}

/** An error answer of the API; `name` is the SDK's name for it (`LimitExceededException`, ...). */
export class ManagementApiError extends CloudsocketError {
  readonly $metadata: { httpStatusCode: number };
  constructor(name: string, status: number, message: string) {
    super('management_api_error', message);
    this.name = name;
    this.$metadata = { httpStatusCode: status };
  }
}

const MAX_ATTEMPTS = 3;
const RETRY_BASE_MS = 100;
const RETRY_CAP_MS = 20_000;

interface Answer {
  status: number;
  errorType?: string;
  body: string;
}

export class SignedManagementTransport implements Transport {
  private readonly url: URL;
  /** The stage's path and `/@connections/`, before each connection id. */
  private readonly connectionsPath: string;
  private readonly signer: RequestSigner;
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;

  constructor(options: SignedManagementTransportOptions) {
    this.url = new URL(options.endpoint.replace(/\/+$/, ''));
    const credentials = options.credentials ?? (async () => credentialsFromEnvironment());
    this.connectionsPath = `${this.url.pathname === '/' ? '' : this.url.pathname}/@connections/`;
    this.signer = new RequestSigner('execute-api', options.region, credentials);
    const secure = this.url.protocol === 'https:';
    this.agent = secure ? new https.Agent({ keepAlive: true, maxSockets: options.maxSockets }) : new http.Agent({ keepAlive: true, maxSockets: options.maxSockets });
    this.request = secure ? https.request : http.request;
  }

  async send(connectionId: string, data: string): Promise<SendOutcome> {
    const answer = await this.call('POST', connectionId, data);
    if (answer.status === 410) return 'gone';
    if (answer.status >= 300) throw errorOf(answer);
    return 'sent';
  }

  /** DeleteConnection; API Gateway picks the close frame itself (no code or reason). */
  async close(connectionId: string, _code: number, _reason: string): Promise<void> {
    const answer = await this.call('DELETE', connectionId);
    if (answer.status >= 300 && answer.status !== 410) throw errorOf(answer);
  }

  /** Stops keeping sockets open (a test's or a tool's end; a Lambda container never needs it). */
  destroy(): void {
    this.agent.destroy();
  }

  private async call(method: 'POST' | 'DELETE', connectionId: string, body?: string): Promise<Answer> {
    for (let attempt = 1; ; attempt++) {
      let answer: Answer | undefined;
      let failure: unknown;
      try {
        answer = await this.once(method, connectionId, body);
      } catch (error) {
        // A reused keep-alive socket the server had closed, or the endpoint unreachable a moment: the SDK retries these too.
        failure = error;
      }
      const retryable = answer === undefined || answer.status === 429 || answer.status >= 500;
      if (!retryable) return answer!;
      if (attempt >= MAX_ATTEMPTS) {
        if (answer) return answer;
        throw failure;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (attempt - 1))));
    }
  }

  private async once(method: 'POST' | 'DELETE', connectionId: string, body?: string): Promise<Answer> {
    const payload = body === undefined ? undefined : Buffer.from(body, 'utf8');
    // A path label as the SDK writes it.
    const path = this.connectionsPath + uriEscape(connectionId);
    const headers = await this.signer.sign({ method, host: this.url.host, path, ...(payload ? { body: payload } : {}) });
    return new Promise<Answer>((resolve, reject) => {
      const request = this.request(
        { method, host: this.url.hostname, port: this.url.port || undefined, path, headers, agent: this.agent },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            const errorType = response.headers['x-amzn-errortype'];
            resolve({
              status: response.statusCode ?? 0,
              ...(typeof errorType === 'string' ? { errorType } : {}),
              body: Buffer.concat(chunks).toString('utf8'),
            });
          });
          response.on('error', reject);
        },
      );
      request.on('error', reject);
      request.end(payload);
    });
  }
}

/** Names as the SDK does: `x-amzn-errortype` up to its first ':' ("GoneException:http://..."), else by status. */
function errorOf(answer: Answer): ManagementApiError {
  const name = answer.errorType?.split(':')[0] || FALLBACK_NAMES[answer.status] || 'ManagementApiError';
  let message = `${name} (HTTP ${answer.status})`;
  try {
    const parsed = JSON.parse(answer.body) as { message?: unknown; Message?: unknown };
    const text = parsed.message ?? parsed.Message;
    if (typeof text === 'string' && text !== '') message = text;
  } catch {
    // Not JSON: the status says enough.
  }
  return new ManagementApiError(name, answer.status, message);
}

const FALLBACK_NAMES: Record<number, string> = {
  403: 'ForbiddenException',
  410: 'GoneException',
  413: 'PayloadTooLargeException',
  429: 'LimitExceededException',
};
