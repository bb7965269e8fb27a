/**
 * A client in the shape of the official CloudBase sample, in Python with the
 * `websockets` library (Debian's python3-websockets), chatting through the
 * unzipped artifact.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, uniqueName, withQuery } from './support/client.js';
import { startArtifactServer, type ArtifactServer } from './support/servers.js';

const PYTHON = '/usr/bin/python3';

describe('the official CloudBase sample protocol from Python websockets', () => {
  let artifact: ArtifactServer;
  beforeAll(async () => {
    artifact = await startArtifactServer();
  });
  afterAll(() => artifact.stop());

  it('chats through the unzipped artifact exactly as the protocol says', async () => {
    expect(existsSync(PYTHON), `${PYTHON} is missing: .ci/run installs python3-websockets with apt-get`).toBe(true);
    const room = uniqueName('py');
    const { client: listener } = await TestClient.join(withQuery(artifact.url, { room }));
    const run = promisify(execFile)(PYTHON, ['test/clients/python_sample_client.py', withQuery(artifact.url, { room, clientId: 'py_user' }), '你好 from python'], {
      timeout: 20_000,
    });
    expect(await listener.next('user_joined')).toMatchObject({ clientId: 'py_user', room, onlineCount: 2 });
    expect(await listener.next('chat')).toMatchObject({ clientId: 'py_user', message: '你好 from python', room, onlineCount: 2 });
    const { stdout } = await run;
    const frames = stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(frames[0]).toMatchObject({ type: 'welcome', clientId: 'py_user', room, onlineCount: 2 });
    expect(frames.find((f) => f.type === 'chat')).toMatchObject({ clientId: 'py_user', message: '你好 from python' });
    expect(frames.some((f) => f.type === 'pong')).toBe(true);
    expect(await listener.next('user_left')).toMatchObject({ clientId: 'py_user', onlineCount: 1 });
    await listener.close();
  });
});
