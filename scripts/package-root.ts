/**
 * Where this package's own modules are, whichever way it runs: from its
 * TypeScript sources (this repository) or compiled into lib/ (an installed
 * package). Builds resolve `cloudsocket` and `cloudsocket/*` here, so a
 * user's app and the adapter bundled with it share one copy of the core.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'esbuild';

/** The folder holding shared/, functions/, apps/ ...: the repository, or lib/ of the installed package. */
export const packageRoot = fileURLToPath(new URL('..', import.meta.url));

const fromSources = import.meta.url.endsWith('.ts');
const extension = fromSources ? '.ts' : '.js';

/** The package's entry points, as its package.json `exports` names them. */
export const PUBLIC_ENTRIES: Record<string, string> = {
  cloudsocket: 'shared/index',
  'cloudsocket/cloudbase': 'functions/cloudbase/index',
  'cloudsocket/aws': 'functions/aws/index',
  'cloudsocket/chat': 'apps/chat/index',
  'cloudsocket/testing': 'testing/index',
};

/** A module of this package by its path without extension, e.g. 'apps/chat/app'. */
export function builtInModule(path: string): string {
  return join(packageRoot, path + extension);
}

export function selfResolvePlugin(): Plugin {
  return {
    name: 'cloudsocket-self',
    setup(build) {
      build.onResolve({ filter: /^cloudsocket(\/[a-z]+)?$/ }, (args) => {
        const entry = PUBLIC_ENTRIES[args.path];
        if (!entry) return { errors: [{ text: `"${args.path}" is not an entry point of cloudsocket (known: ${Object.keys(PUBLIC_ENTRIES).join(', ')})` }] };
        return { path: builtInModule(entry) };
      });
    },
  };
}
