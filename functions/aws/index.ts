/**
 * `cloudsocket/aws`: the API Gateway WebSocket adapter. One call turns an app
 * into the four Lambda handlers the template wires up; each built handler
 * file exports one of them as `handler`.
 */
import type { App } from '../../shared/app.js';
import { createConnectHandler, type ConnectHandler } from './connect.js';
import { createDisconnectHandler, type DisconnectHandler } from './disconnect.js';
import { createMessageHandler, type MessageHandler } from './message.js';
import { lazyRuntime, type AwsHandlerOptions } from './runtime.js';
import { createWelcomeHandler, type WelcomeHandler } from './welcome.js';

export interface AwsHandlers {
  /** `$connect`: admits or refuses the handshake and queues the welcome. */
  connect: ConnectHandler;
  /** `$default`: every frame a client sends. */
  message: MessageHandler;
  /** `$disconnect`. */
  disconnect: DisconnectHandler;
  /** Invoked asynchronously by `connect`: greets the connection once API Gateway has opened it. */
  welcome: WelcomeHandler;
}

export function createAwsHandlers(app: App, options: AwsHandlerOptions = {}): AwsHandlers {
  const runtime = lazyRuntime(app, options);
  return {
    connect: createConnectHandler(runtime),
    message: createMessageHandler(runtime),
    disconnect: createDisconnectHandler(runtime),
    welcome: createWelcomeHandler(runtime),
  };
}

/*
 * One handler alone, for a file that exports only it: a bundler then leaves
 * out what the others use (`$connect`'s Lambda client). Each has a runtime of its own, as each is its own
 * Lambda function anyway.
 */
export const connectHandler = (app: App, options: AwsHandlerOptions = {}): ConnectHandler => createConnectHandler(lazyRuntime(app, options));
export const messageHandler = (app: App, options: AwsHandlerOptions = {}): MessageHandler => createMessageHandler(lazyRuntime(app, options));
export const disconnectHandler = (app: App, options: AwsHandlerOptions = {}): DisconnectHandler => createDisconnectHandler(lazyRuntime(app, options));
export const welcomeHandler = (app: App, options: AwsHandlerOptions = {}): WelcomeHandler => createWelcomeHandler(lazyRuntime(app, options));

export type { AwsHandlerOptions } from './runtime.js';
export type { AwsSettings, AwsSettingsOverrides } from './settings.js';
export { readAwsSettings } from './settings.js';
export type * from './events.js';
export { ManagementApiTransport } from './management-transport.js';
export { ManagementApiError, SignedManagementTransport, type SignedManagementTransportOptions } from './signed-management-transport.js';
export { credentialsFromEnvironment, MissingEnvironmentCredentialsError, type EnvironmentCredentials } from './environment-credentials.js';
export { DynamoDbRegistry, RegistryContentionError, ROOM_LOG_SLOTS, type DynamoDbRegistryOptions, type RoomLogSightings } from '../../registries/dynamodb-registry.js';
export { DynamoDbStateStore, StateContentionError, type DynamoDbStateStoreOptions } from '../../registries/dynamodb-state.js';
export { DynamoDbRoomLog, RoomLogContentionError, type DynamoDbRoomLogOptions } from '../../registries/dynamodb-room-log.js';
