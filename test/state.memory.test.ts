import { MemoryStateStore } from '../shared/memory-state.js';
import { stateSuite } from './state-suite.js';

stateSuite('MemoryStateStore', async () => {
  const store = new MemoryStateStore();
  // One process: every caller shares the one store.
  return { store, peer: async () => store, cleanup: async () => {} };
});
