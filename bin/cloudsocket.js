#!/usr/bin/env node
// The CLI is TypeScript run through tsx, so `npx cloudsocket` needs no build step of its own.
import { register } from 'tsx/esm/api';

register();
await import('../scripts/cli.ts');
