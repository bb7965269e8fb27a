/**
 * `cloudsocket/testing`: for an app's own vitest tests. Start any target of
 * the app on a random port, talk to it with a client that awaits frames
 * instead of sleeping, and run the core conformance suite against it.
 */
export { handshakeStatus, TestClient, uniqueName, withQuery, withTimeout, type Closed, type ConnectOptions, type Frame } from './client.js';
export { conformanceHelpers, conformanceSuite, type ConformanceOptions } from './conformance.js';
export { startBuiltTarget, startCloudbase, type BuiltTargetOptions, type InProcessOptions, type RunningTarget } from './targets.js';
