import { afterAll, beforeAll } from 'vitest';
import { conformanceSuite } from './conformance.js';
import { startArtifactServer, startSourceServer, type ArtifactServer, type SourceServer } from './support/servers.js';

let source: SourceServer;
let artifact: ArtifactServer;

beforeAll(async () => {
  [source, artifact] = await Promise.all([startSourceServer(), startArtifactServer()]);
});

afterAll(async () => {
  await Promise.all([source?.stop(), artifact?.stop()]);
});

conformanceSuite('CloudBase target from source', () => source.url);
conformanceSuite('CloudBase target from the unzipped artifact (bash scf_bootstrap)', () => artifact.url);
