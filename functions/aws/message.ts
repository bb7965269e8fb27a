/** `$default`: every frame a client sends, routed by the core (not by API Gateway's route keys). */
import type { LambdaContext, MessageEvent, WebSocketResult } from './events.js';
import { guarded, type Runtime } from './runtime.js';

export type MessageHandler = (event: MessageEvent, context?: LambdaContext) => Promise<WebSocketResult>;

export const createMessageHandler = (runtime: () => Runtime): MessageHandler => async (event) => {
  const { requestContext } = event;
  return guarded(runtime, 'message', requestContext.connectionId, async (rt) => {
    const body = event.body ?? '';
    const text = event.isBase64Encoded ? Buffer.from(body, 'base64').toString('utf8') : body;
    // API Gateway's own receipt time: how fast the client sent, not how long the invocation waited.
    await rt.engine(requestContext).receive(requestContext.connectionId, text, requestContext.requestTimeEpoch);
    return { statusCode: 200 };
  });
};
