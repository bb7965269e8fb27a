/**
 * The resume secret `cloudsocket build` writes into the bundles when
 * RESUME_SECRET is not set where they run: one per output folder, kept
 * there, so rebuilding unchanged sources gives the same zip (and a redeploy
 * of it stays a no-op) while another folder gets a secret of its own.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AWS_HANDLERS, buildAws, buildCloudbase } from '../scripts/build.js';

const folders: string[] = [];
async function folder(): Promise<string> {
  const made = await mkdtemp(join(tmpdir(), 'cloudsocket-secret-'));
  folders.push(made);
  return made;
}
afterAll(() => Promise.all(folders.map((made) => rm(made, { recursive: true, force: true }))));

const secretOf = async (out: string) => (await readFile(join(out, '.resume-secret'), 'utf8')).trim();

describe('the resume secret of a build', () => {
  let out: string;
  let firstZip: Buffer;
  beforeAll(async () => {
    out = await folder();
    firstZip = await readFile((await buildCloudbase(out)).zip);
  });

  it('is made on the first build, kept beside the artifacts readable by its owner only, and written into the bundle', async () => {
    const secret = await secretOf(out);
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await stat(join(out, '.resume-secret'))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(out, 'cloudbase/index.mjs'), 'utf8')).toContain(JSON.stringify(secret));
  });

  it('stays the same for every build into the folder, so unchanged sources give the same zip', async () => {
    const secret = await secretOf(out);
    const again = await readFile((await buildCloudbase(out)).zip);
    expect(again.equals(firstZip)).toBe(true);
    await buildAws(out);
    for (const handler of AWS_HANDLERS) expect(await readFile(join(out, `aws/${handler}.mjs`), 'utf8')).toContain(JSON.stringify(secret));
  });

  it('differs in another folder, and replaces a kept file that holds no secret', async () => {
    const other = await folder();
    await buildCloudbase(other);
    expect(await secretOf(other)).not.toBe(await secretOf(out));

    const broken = await folder();
    await writeFile(join(broken, '.resume-secret'), 'not a secret\n');
    await buildCloudbase(broken);
    expect(await secretOf(broken)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});
