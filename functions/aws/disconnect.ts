/** `$disconnect`: best effort on API Gateway's side; the registry's TTL covers the ones that never come. */
import type { DisconnectEvent, LambdaContext, WebSocketResult } from './events.js';
import { guarded } from './runtime.js';

export const handler = async (event: DisconnectEvent, _context?: LambdaContext): Promise<WebSocketResult> => {
  const { requestContext } = event;
  return guarded('disconnect', requestContext.connectionId, async (rt) => {
    rt.logger.debug('disconnect_event', {
      connectionId: requestContext.connectionId,
      statusCode: requestContext.disconnectStatusCode,
      reason: requestContext.disconnectReason,
    });
    await rt.engine(requestContext).disconnect(requestContext.connectionId);
    return { statusCode: 200 };
  });
};
