export * from '../../testing/client.js';
