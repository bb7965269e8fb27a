/**
 * `$connect`: admits or refuses the handshake. Nothing can be sent to the
 * connection until this returns, so the welcome is handed to the welcome
 * function through an asynchronous invocation, as AWS advises.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { HandshakeRequest } from '../../shared/app.js';
import { ConfigError } from '../../shared/errors.js';
import type { ConnectEvent, LambdaContext, WebSocketResult, WelcomePayload } from './events.js';
import { guarded, SDK_LOGGER, type Runtime } from './runtime.js';

export type ConnectHandler = (event: ConnectEvent, context?: LambdaContext) => Promise<WebSocketResult>;

/** A refused handshake carries `{code, message}` like every other refusal (docs/errors.md). */
const HANDSHAKE_FAILED: WebSocketResult = {
  statusCode: 500,
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({ code: 'internal_error', message: 'internal server error' }),
};

export const createConnectHandler = (runtime: () => Runtime): ConnectHandler => async (event) => {
  const { requestContext } = event;
  return guarded(runtime, 'connect', requestContext.connectionId, async (rt) => {
    const welcomeFunction = rt.settings.welcomeFunction;
    if (!welcomeFunction) throw new ConfigError('WELCOME_FUNCTION must name the function that greets new connections');

    const request = handshakeFrom(event);
    const admission = await rt.engine(requestContext).admit(request);
    if (!admission.ok) {
      const { status, code, message } = admission.error;
      return { statusCode: status, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ code, message }) };
    }

    try {
      await queueWelcome(welcomeFunction, {
        connectionId: requestContext.connectionId,
        domainName: requestContext.domainName,
        stage: requestContext.stage,
        queuedAt: Date.now(),
        ...(Object.keys(admission.greeting).length > 0 ? { greeting: admission.greeting } : {}),
      });
    } catch (error) {
      // A connection nobody can greet is refused rather than left silent.
      rt.logger.error('welcome_invoke_failed', { connectionId: requestContext.connectionId, error });
      await rt.registry.remove(requestContext.connectionId);
      return HANDSHAKE_FAILED;
    }

    const protocol = request.headers['sec-websocket-protocol']?.split(',')[0]?.trim();
    return protocol ? { statusCode: 200, headers: { 'Sec-WebSocket-Protocol': protocol } } : { statusCode: 200 };
  }, HANDSHAKE_FAILED);
};

/** Made here, not in the runtime the four handlers share: only `$connect` invokes, so only its bundle carries the Lambda client. */
let lambda: LambdaClient | undefined;

async function queueWelcome(functionName: string, payload: WelcomePayload): Promise<void> {
  lambda ??= new LambdaClient({ logger: SDK_LOGGER });
  await lambda.send(
    new InvokeCommand({ FunctionName: functionName, InvocationType: 'Event', Payload: new TextEncoder().encode(JSON.stringify(payload)) }),
  );
}

/** Header names lower-cased; repeated headers (multiValueHeaders) joined with ", " as HTTP would. */
function handshakeFrom(event: ConnectEvent): HandshakeRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.headers ?? {})) headers[name.toLowerCase()] = value;
  for (const [name, values] of Object.entries(event.multiValueHeaders ?? {})) {
    if (Array.isArray(values) && values.length > 0) headers[name.toLowerCase()] = values.join(', ');
  }
  return {
    connectionId: event.requestContext.connectionId,
    headers,
    query: { ...(event.queryStringParameters ?? {}) },
    sourceIp: event.requestContext.identity?.sourceIp ?? '',
  };
}
