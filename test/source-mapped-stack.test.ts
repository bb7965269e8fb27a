/**
 * The AWS handlers' own stack mapping, against a real esbuild bundle and its
 * map: frames in the bundle name the TypeScript line, every other frame is
 * left as V8 wrote it.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sourceMappedStack } from '../functions/aws/source-mapped-stack.js';

let folder: string;
let bundle: string;
/** Where `throw` is in the bundle, 1-based as V8 counts. */
let generated: { line: number; column: number };

const SOURCE = ['export function handle(): never {', '  const reason = "mapped";', '  throw new Error(reason);', '}', ''].join('\n');

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'cloudsocket-stack-'));
  await writeFile(join(folder, 'app.ts'), SOURCE);
  bundle = join(folder, 'out', 'handler.mjs');
  await build({ entryPoints: [join(folder, 'app.ts')], bundle: true, minify: true, format: 'esm', sourcemap: true, outfile: bundle, logLevel: 'silent' });
  const lines = (await readFile(bundle, 'utf8')).split('\n');
  const line = lines.findIndex((text) => text.includes('throw new Error'));
  generated = { line: line + 1, column: lines[line]!.indexOf('throw new Error') + 1 };
});

afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

describe('sourceMappedStack', () => {
  it("rewrites a frame in a bundle with a map beside it to the source's path, line and column", () => {
    const stack = `Error: mapped\n    at handle (${pathToFileURL(bundle).href}:${generated.line}:${generated.column})`;
    expect(sourceMappedStack(stack)).toBe(`Error: mapped\n    at handle (${join(folder, 'app.ts')}:3:3)`);
  });

  it('rewrites a frame given as a path, not a URL', () => {
    expect(sourceMappedStack(`    at ${bundle}:${generated.line}:${generated.column}`)).toBe(`    at ${join(folder, 'app.ts')}:3:3`);
  });

  it('leaves frames in files without a map, and Node internals, as they are', () => {
    const stack = [
      'Error: x',
      `    at other (${pathToFileURL(join(folder, 'no-map.mjs')).href}:1:10)`,
      '    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)',
      '    at async Promise.all (index 0)',
    ].join('\n');
    expect(sourceMappedStack(stack)).toBe(stack);
  });
});
