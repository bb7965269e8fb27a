/**
 * `cloudsocket build` replaces only folders it made: the real CLI in a child
 * process, writing into temporary folders that also hold a user's own files.
 */
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BUILD_MARKER } from '../scripts/build-errors.js';
import { runCliIn } from './support/cli-in-folder.js';

let root: string;

beforeEach(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'cloudsocket-build-out-')));
});

afterEach(() => rm(root, { recursive: true, force: true }));

const build = (cwd: string, ...args: string[]) => runCliIn(cwd, ['build', ...args]);

const refusal = (folder: string) =>
  `cloudsocket: build: ${folder} was not made by cloudsocket build (it has no ${BUILD_MARKER} file), so build will not replace it; ` +
  'write the build elsewhere with --out DIR or outDir in cloudsocket.config.ts (or CLOUDSOCKET_DIST_DIR), or move that folder away\n';

describe("a folder build did not make", () => {
  it('`build --out .` keeps the project\'s own aws/ and writes nothing', async () => {
    await mkdir(join(root, 'aws'));
    await writeFile(join(root, 'aws/important.txt'), 'mine\n');
    const result = await build(root, '--out', '.');
    expect(result).toMatchObject({ code: 1, stderr: refusal(join(root, 'aws')) });
    expect(await readFile(join(root, 'aws/important.txt'), 'utf8')).toBe('mine\n');
    // Refused before either folder is touched, so no half-written build either.
    expect((await readdir(root)).sort()).toEqual(['aws']);
  });

  it("config outDir '..' keeps the parent's cloudbase/", async () => {
    const project = join(root, 'project');
    await mkdir(project);
    await writeFile(join(project, 'cloudsocket.config.mjs'), "export default { outDir: '..' };\n");
    await mkdir(join(root, 'cloudbase'));
    await writeFile(join(root, 'cloudbase/notes.md'), 'mine\n');
    const result = await build(project);
    expect(result).toMatchObject({ code: 1, stderr: refusal(join(root, 'cloudbase')) });
    expect(await readFile(join(root, 'cloudbase/notes.md'), 'utf8')).toBe('mine\n');
    expect((await readdir(root)).sort()).toEqual(['cloudbase', 'project']);
  });

  it("`build --out .` keeps the project's own cloudbaserc.json and writes nothing", async () => {
    await writeFile(join(root, 'cloudbaserc.json'), '{"envId":"mine"}\n');
    const result = await build(root, '--out', '.');
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `cloudsocket: build: ${join(root, 'cloudbaserc.json')} is there but no earlier cloudsocket build wrote it (there is no cloudbase/ folder of build's beside it), so build will not overwrite it; ` +
        'write the build elsewhere with --out DIR or outDir in cloudsocket.config.ts (or CLOUDSOCKET_DIST_DIR), or move that file away\n',
    );
    expect(await readFile(join(root, 'cloudbaserc.json'), 'utf8')).toBe('{"envId":"mine"}\n');
    expect((await readdir(root)).sort()).toEqual(['cloudbaserc.json']);
  });

  it('a file named aws where the folder would go is refused too', async () => {
    await mkdir(join(root, 'out'));
    await writeFile(join(root, 'out/aws'), 'mine\n');
    const result = await build(root, '--out', 'out');
    expect(result).toMatchObject({ code: 1, stderr: refusal(join(root, 'out/aws')) });
    expect(await readFile(join(root, 'out/aws'), 'utf8')).toBe('mine\n');
  });
});

describe("build's own output", () => {
  it('is marked, and replaced whole by the next build', async () => {
    expect((await build(root)).code).toBe(0);
    const dist = join(root, 'dist');
    expect((await readdir(join(dist, 'aws'))).includes(BUILD_MARKER)).toBe(true);
    expect((await readdir(join(dist, 'cloudbase'))).includes(BUILD_MARKER)).toBe(true);
    await writeFile(join(dist, 'aws/left-over.txt'), 'stale\n');

    expect((await build(root)).code).toBe(0);
    expect((await readdir(join(dist, 'aws'))).includes('left-over.txt')).toBe(false);
    expect((await readdir(join(dist, 'aws'))).includes('connect.mjs')).toBe(true);
  });

  it('of a build before the marker is recognised by its exact files and replaced', async () => {
    expect((await build(root)).code).toBe(0);
    const dist = join(root, 'dist');
    for (const folder of ['aws', 'cloudbase']) await rm(join(dist, folder, BUILD_MARKER));

    expect((await build(root)).code).toBe(0);
    expect((await readdir(join(dist, 'aws'))).includes(BUILD_MARKER)).toBe(true);
    expect((await readdir(join(dist, 'cloudbase'))).includes(BUILD_MARKER)).toBe(true);
  });

  it('of a build before the marker, with a file of the user added, is not replaced', async () => {
    expect((await build(root)).code).toBe(0);
    const dist = join(root, 'dist');
    for (const folder of ['aws', 'cloudbase']) await rm(join(dist, folder, BUILD_MARKER));
    await writeFile(join(dist, 'cloudbase/config.local.json'), '{}\n');

    const result = await build(root);
    expect(result).toMatchObject({ code: 1, stderr: refusal(join(dist, 'cloudbase')) });
    expect(await readFile(join(dist, 'cloudbase/config.local.json'), 'utf8')).toBe('{}\n');
  });
});
