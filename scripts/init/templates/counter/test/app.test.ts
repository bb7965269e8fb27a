/**
 * The app on both targets as they ship: the CloudBase function through its
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

  describe(`counter on ${name}`, () => {
    it('tells the whole room about an addition', async () => {
      const room = uniqueName('room');
      const a = await TestClient.join(withQuery(url(), { room, name: 'ann' }));
      const b = await TestClient.join(withQuery(url(), { room, name: 'bob' }));
      a.client.send({ type: 'add', by: 3 });
      for (const client of [a.client, b.client]) {
        expect(await client.next('added')).toMatchObject({ by: 3, clientId: a.welcome.clientId, name: 'ann' });
      }
      b.client.send({ type: 'count' });
      expect(await b.client.next('count')).toMatchObject({ room, online: 2 });
      await Promise.all([a.client.close(), b.client.close()]);
    });

    it('refuses an addition out of range', async () => {
      const { client } = await TestClient.join(url());
      client.send({ type: 'add', by: 1000 });
      expect(await client.next('error')).toMatchObject({ code: 'invalid_message' });
      await client.close();
    });
  });
}
