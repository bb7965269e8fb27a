// `npm pack` / `npm publish`: compile the TypeScript into lib/ (JavaScript and
// .d.ts, the same layout as the sources) and copy beside it the files the
// code reads at run time, so the installed package needs no TypeScript loader.
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const lib = join(root, 'lib');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

rmSync(lib, { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });

const ASSETS = [
  'infra',
  'functions/cloudbase/scf_bootstrap',
  'clients/page/index.html',
  'clients/page/page.css',
  // Every plain-JavaScript module of the emulator (workers and the hooks they load): tsc copies none of them.
  ...readdirSync(join(root, 'scripts/emulator'))
    .filter((name) => name.endsWith('.mjs'))
    .map((name) => `scripts/emulator/${name}`),
  'scripts/init/templates',
  'scripts/exit-with-parent.cjs',
];
for (const asset of ASSETS) cpSync(join(root, asset), join(lib, asset), { recursive: true });
