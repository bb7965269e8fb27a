/**
 * The front door's 503 when no instance takes a connection says how many
 * instances are still alive, not how many were started.
 */
import { describe, expect, it } from 'vitest';
import { noInstanceMessage } from '../scripts/cloudbase-fleet.js';

describe("the front door's no_instance_available message", () => {
  it('counts the live instances when some have ended', () => {
    expect(noInstanceMessage(3, 3, 2)).toBe('all 3 instances serve 2 connection(s) each; CloudBase would start another (raise --instances or --concurrency)');
    expect(noInstanceMessage(1, 3, 2)).toBe('the 1 live instance(s) of 3 (2 ended) serve 2 connection(s) each; CloudBase would start another (raise --instances or --concurrency)');
  });
});
