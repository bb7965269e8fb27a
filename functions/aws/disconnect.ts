/** `$disconnect`: best effort on API Gateway's side; the registry's TTL covers the ones that never come. */
import type { DisconnectEvent, LambdaContext, WebSocketResult } from './events.js';
import { guarded, type Runtime } from './runtime.js';

export type DisconnectHandler = (event: DisconnectEvent, context?: LambdaContext) => Promise<WebSocketResult>;

export const createDisconnectHandler = (runtime: () => Runtime): DisconnectHandler => async (event) => {
  const { requestContext } = event;
  return guarded(runtime, 'disconnect', requestContext.connectionId, async (rt) => {
    rt.logger.debug('disconnect_event', {
      connectionId: requestContext.connectionId,
      statusCode: requestContext.disconnectStatusCode,
      reason: requestContext.disconnectReason,
    });
    await rt.engine(requestContext).disconnect(requestContext.connectionId);
    return { statusCode: 200 };
  });
};
