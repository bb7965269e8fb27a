import { MemoryRegistry } from '../shared/memory-registry.js';
import { registrySuite } from './registry-suite.js';

registrySuite('MemoryRegistry', async () => ({ registry: new MemoryRegistry(), cleanup: async () => {} }), { listsIdle: true });
