import { MemoryStateStore } from '../shared/memory-state.js';
import { stateSuite } from './state-suite.js';

stateSuite(
  'MemoryStateStore',
  async (options) => {
    const store = new MemoryStateStore(options);
    // One process: every caller shares the one store.
    return { store, peer: async () => store, cleanup: async () => {} };
  },
  'follows the clock',
);
