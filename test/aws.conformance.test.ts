import { afterAll, beforeAll } from 'vitest';
import type { RunningEmulator } from '../scripts/emulator/index.js';
import { conformanceSuite } from './conformance.js';
import { startAwsEmulator } from './support/emulator.js';

let emulator: RunningEmulator;

beforeAll(async () => {
  emulator = await startAwsEmulator();
});

afterAll(async () => {
  await emulator?.stop();
});

conformanceSuite('AWS emulator (API Gateway + built Lambda handlers + dynalite)', () => emulator.url);
