/**
 * The chat on both targets as they ship: the CloudBase function through its
 * scf_bootstrap and the Lambda handlers under the local API Gateway emulator.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conformanceSuite, startBuiltTarget, TestClient, uniqueName, withQuery, type RunningTarget } from 'cloudsocket/testing';

const targets = new Map<'cloudbase' | 'aws', RunningTarget>();

beforeAll(async () => {
  const [cloudbase, aws] = await Promise.all([startBuiltTarget('cloudbase'), startBuiltTarget('aws')]);
  targets.set('cloudbase', cloudbase).set('aws', aws);
}, 120_000);

afterAll(async () => {
  await Promise.all([...targets.values()].map((target) => target.stop()));
});

for (const name of ['cloudbase', 'aws'] as const) {
  const url = () => targets.get(name)!.url;

  conformanceSuite(name, url);

  describe(`chat on ${name}`, () => {
    it('broadcasts a chat to the whole room', async () => {
      const room = uniqueName('room');
      const a = await TestClient.join(withQuery(url(), { room }));
      const b = await TestClient.join(withQuery(url(), { room }));
      a.client.send({ type: 'chat', content: 'hello' });
      for (const client of [a.client, b.client]) expect(await client.next('chat')).toMatchObject({ message: 'hello', clientId: a.welcome.clientId });
      await Promise.all([a.client.close(), b.client.close()]);
    });
  });
}
