/** A real redis-server per test file, on a free port, gone afterwards. */
export { startRedisServer, type LocalRedis } from '../../scripts/redis-server.js';
