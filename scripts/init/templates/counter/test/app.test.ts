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
    it('tells the whole room about an addition and the new total', async () => {
      const room = uniqueName('room');
      const a = await TestClient.join(withQuery(url(), { room, name: 'ann' }));
      const b = await TestClient.join(withQuery(url(), { room, name: 'bob' }));
      a.client.send({ type: 'add', by: 3 });
      for (const client of [a.client, b.client]) {
        expect(await client.next('added')).toMatchObject({ by: 3, total: 3, clientId: a.welcome.clientId, name: 'ann' });
      }
      b.client.send({ type: 'count' });
      expect(await b.client.next('count')).toMatchObject({ room, online: 2, total: 3 });
      await Promise.all([a.client.close(), b.client.close()]);
    });

    it('keeps one total per room that no addition is lost from, however many add at once', async () => {
      const room = uniqueName('room');
      const members = await Promise.all(Array.from({ length: 8 }, () => TestClient.join(withQuery(url(), { room }))));
      const amounts = members.map((_, i) => [i + 1, 10, 2 * i + 1]);
      members.forEach(({ client }, i) => amounts[i]!.forEach((by) => client.send({ type: 'add', by })));
      const additions = amounts.flat().length;
      const sum = amounts.flat().reduce((a, b) => a + b, 0);
      const first = members[0]!.client;
      const totals: number[] = [];
      for (let i = 0; i < additions; i++) totals.push((await first.next('added', 20_000)).total);
      // Every addition was its own atomic step: each saw a different total, the last of them the sum.
      expect(new Set(totals).size).toBe(additions);
      expect(Math.max(...totals)).toBe(sum);
      first.send({ type: 'count' });
      expect(await first.next('count')).toMatchObject({ total: sum, online: members.length });
      await Promise.all(members.map(({ client }) => client.close()));
      // On AWS each addition is a Lambda invocation, and the first ones start containers.
    }, 60_000);

    it('refuses an addition out of range', async () => {
      const { client } = await TestClient.join(url());
      client.send({ type: 'add', by: 1000 });
      expect(await client.next('error')).toMatchObject({ code: 'invalid_message' });
      await client.close();
    });
  });
}
