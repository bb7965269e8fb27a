#!/usr/bin/env node
// Installed, the CLI runs the JavaScript compiled into lib/ when the package was packed.
// In a checkout of the repository there is no lib/: the TypeScript sources run through tsx.
import { existsSync } from 'node:fs';

const compiled = new URL('../lib/scripts/cli.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../scripts/cli.ts');
}
