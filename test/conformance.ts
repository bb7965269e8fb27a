/**
 * The chat's conformance: the core suite every app passes (testing/conformance.ts),
 * then every chat row of docs/protocol.md, over real sockets, against any
 * running target. A target file calls `conformanceSuite('name', () => baseUrl)`
 * where baseUrl is the WebSocket URL without query (ws://127.0.0.1:PORT/ or
 * ws://127.0.0.1:PORT/dev).
 */
import { describe, expect, it } from 'vitest';
import { conformanceHelpers, conformanceSuite as coreConformanceSuite } from '../testing/conformance.js';
import { uniqueName } from '../testing/client.js';

export function conformanceSuite(target: string, baseUrl: () => string): void {
  coreConformanceSuite(target, baseUrl);
  const { join, closeAll, pair, expectTimestamp, expectResumable, expectInvalidMessage } = conformanceHelpers(baseUrl);

  describe(`chat conformance: ${target}`, () => {
    it('says who and where in the welcome', async () => {
      const { welcome } = await join();
      expect(welcome.message).toBe(`Welcome to lobby, ${welcome.clientId}!`);
      await closeAll();
    });

    describe('chat', () => {
      it('broadcasts a chat to the whole room, sender included', async () => {
        const { room, a, b } = await pair();
        a.client.send({ type: 'chat', content: 'hello room', timestamp: Date.now() });
        const [toA, toB] = await Promise.all([a.client.next('chat'), b.client.next('chat')]);
        for (const frame of [toA, toB]) {
          expect(frame).toMatchObject({ type: 'chat', clientId: a.welcome.clientId, room, message: 'hello room', onlineCount: 2 });
          expect(typeof frame.id).toBe('string');
          expectTimestamp(frame);
        }
        expect(toA.id).toBe(toB.id);
        await closeAll();
      });

      it('numbers chat frames after the room\'s previous frame, one by one, the same for every member', async () => {
        const { a, b } = await pair();
        const before = b.welcome.seq;
        a.client.send({ type: 'chat', content: 'first' });
        const [firstA, firstB] = await Promise.all([a.client.next('chat'), b.client.next('chat')]);
        expect(firstA.seq).toBe(before + 1);
        expect(firstB.seq).toBe(firstA.seq);
        b.client.send({ type: 'chat', content: 'second' });
        const [secondA, secondB] = await Promise.all([a.client.next('chat'), b.client.next('chat')]);
        expect(secondA.seq).toBe(before + 2);
        expect(secondB.seq).toBe(secondA.seq);
        await closeAll();
      });

      it('keeps rooms apart', async () => {
        const { a, b } = await pair();
        const outsider = await join({ room: uniqueName('elsewhere') });
        outsider.client.send({ type: 'chat', content: 'only for my room' });
        await outsider.client.next('chat');
        a.client.send({ type: 'chat', content: 'marker' });
        const seen = await b.client.next('chat');
        expect(seen.message).toBe('marker');
        await closeAll();
      });

      it('treats a plain text frame as chat', async () => {
        const { a, b } = await pair();
        a.client.send('just text, not JSON');
        expect(await b.client.next('chat')).toMatchObject({ clientId: a.welcome.clientId, message: 'just text, not JSON' });
        await closeAll();
      });

      it('accepts the AWS sample frame {"action":"sendmessage","data":...} as chat', async () => {
        const { a, b } = await pair();
        a.client.send({ action: 'sendmessage', data: 'from the aws sample' });
        expect(await b.client.next('chat')).toMatchObject({ message: 'from the aws sample' });
        await closeAll();
      });

      it('accepts content of exactly 4000 characters', async () => {
        const { a } = await pair();
        const content = '界'.repeat(4000);
        a.client.send({ type: 'chat', content });
        expect((await a.client.next('chat')).message).toBe(content);
        await closeAll();
      });
    });

    describe('private and join', () => {
      it('delivers private messages to the recipient only, across rooms', async () => {
        const { a, b } = await pair();
        const far = await join({ clientId: uniqueName('far'), room: uniqueName('other') });
        a.client.send({ type: 'private', to: far.welcome.clientId, content: 'psst' });
        expect(await far.client.next('private')).toMatchObject({
          type: 'private',
          clientId: a.welcome.clientId,
          to: far.welcome.clientId,
          message: 'psst',
        });
        a.client.send({ type: 'chat', content: 'public marker' });
        await b.client.next('chat');
        expect(b.client.all('private')).toHaveLength(0);
        await closeAll();
      });

      it('numbers a private message in the recipient\'s room, between that room\'s other frames', async () => {
        const { a } = await pair();
        const farRoom = uniqueName('other');
        const far = await join({ clientId: uniqueName('far'), room: farRoom });
        expectResumable(far.welcome);
        a.client.send({ type: 'private', to: far.welcome.clientId, content: 'psst' });
        expect((await far.client.next('private')).seq).toBe(far.welcome.seq + 1);
        far.client.send({ type: 'chat', content: 'after the private one' });
        expect((await far.client.next('chat')).seq).toBe(far.welcome.seq + 2);
        await closeAll();
      });

      it('answers a private message to nobody with recipient_not_found', async () => {
        const { a } = await pair();
        a.client.send({ type: 'private', to: 'nobody_here_at_all', content: 'hello?' });
        expect(await a.client.next('error')).toMatchObject({ code: 'recipient_not_found' });
        await closeAll();
      });

      it('carries chat into the room joined', async () => {
        const { a } = await pair();
        const target = uniqueName('next');
        const waiting = await join({ clientId: uniqueName('w'), room: target });
        a.client.send({ type: 'join', room: target });
        expect(await a.client.next('welcome')).toMatchObject({ room: target, message: expect.any(String) });
        a.client.send({ type: 'chat', content: 'in the new room' });
        expect((await waiting.client.next('chat')).message).toBe('in the new room');
        await closeAll();
      });
    });

    describe('content errors', () => {
      it.each([
        // Malformed JSON and a missing or mistyped type are rows of the core suite; these are the chat's content rule.
        ['a chat cut off mid-content', '{"type":"chat","content":'],
        ['a missing content', { type: 'chat' }],
        ['a mistyped content', { type: 'chat', content: 42 }],
        ['an empty content', { type: 'chat', content: '' }],
      ])('answers %s with invalid_message to the sender only', async (_label, frame) => {
        const { a, b } = await pair();
        await expectInvalidMessage(a.client, frame);
        a.client.send({ type: 'chat', content: 'still here' });
        expect((await b.client.next('chat')).message).toBe('still here');
        expect(b.client.all('error')).toHaveLength(0);
        await closeAll();
      });

      it('answers 4001 characters of content with message_too_large', async () => {
        const { a } = await pair();
        a.client.send({ type: 'chat', content: 'x'.repeat(4001) });
        expect(await a.client.next('error')).toMatchObject({ code: 'message_too_large' });
        a.client.send({ type: 'ping' });
        await a.client.next('pong');
        await closeAll();
      });

    });
  });
}
