/**
 * `cloudsocket init` as a user runs it: the real CLI in a child process, in a
 * temporary working directory. Bad names are one line and exit 2; the printed
 * `cd` line works when pasted into a shell.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCliIn } from './support/cli-in-folder.js';

const run = promisify(execFile);
let cwd: string;

beforeEach(async () => {
  cwd = await realpath(await mkdtemp(join(tmpdir(), 'cloudsocket-init-')));
});

afterEach(() => rm(cwd, { recursive: true, force: true }));

const init = (...args: string[]) => runCliIn(cwd, ['init', ...args]);

describe('init refuses a name it cannot scaffold into', () => {
  it('an existing file: one line, exit 2, the file untouched', async () => {
    await writeFile(join(cwd, 'afile'), 'mine\n');
    const result = await init('afile');
    expect(result).toEqual({ code: 2, stdout: '', stderr: 'cloudsocket: init: afile is a file, not a folder; name a new folder\n' });
    expect(await readFile(join(cwd, 'afile'), 'utf8')).toBe('mine\n');
  });

  it.each(['', '  '])('an empty name (%j): one line, exit 2, nothing written to the working directory', async (name) => {
    const result = await init(name);
    expect(result).toEqual({ code: 2, stdout: '', stderr: 'cloudsocket: init: the folder name is empty; name a new folder, e.g. cloudsocket init my-app\n' });
    expect(await readdir(cwd)).toEqual([]);
  });
});

describe('the printed cd line', () => {
  it.each(['my-app', 'My App', "Bob's app", 'a$b'])('for %j leads a shell into the new project', async (name) => {
    const result = await init(name);
    expect(result.code).toBe(0);
    const cdLine = result.stdout.split('\n').find((line) => line.trimStart().startsWith('cd '));
    expect(cdLine).toBeDefined();
    const { stdout } = await run('bash', ['-c', `${cdLine!.trim()} && pwd`], { cwd });
    expect(stdout.trim()).toBe(join(cwd, name));
    expect(JSON.parse(await readFile(join(cwd, name, 'package.json'), 'utf8'))).toHaveProperty('name');
  });
});
