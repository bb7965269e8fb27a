/** The public surface of the core, for apps and adapters. */
export * from './app.js';
export * from './routes.js';
export * from './engine.js';
export * from './errors.js';
export * from './log.js';
export * from './memory-registry.js';
export * from './memory-room-log.js';
export * from './protocol.js';
export * from './rate-limit.js';
export * from './registry.js';
export * from './room-log.js';
export * from './settings.js';
export * from './transport.js';
export * from './config.js';
export * from './names.js';
