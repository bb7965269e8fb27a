import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { basename, join, relative, resolve } from 'node:path';
import { parseFlags, UsageError, type Command } from '../cli-args.js';
import { packageRoot } from '../package-root.js';

const TEMPLATES = ['chat', 'counter'] as const;
type Template = (typeof TEMPLATES)[number];

const templatesDir = join(packageRoot, 'scripts/init/templates');

export const initCommand: Command = {
  name: 'init',
  summary: 'create a project: your app, its config, a test against both targets',
  help: `Usage: cloudsocket init DIR [--template chat|counter] [--cloudsocket SPEC]

Writes a new project into DIR (which must not exist or be empty):
  package.json            depends on cloudsocket; start, test, build and deploy scripts
  cloudsocket.config.ts   the app module and each target's settings
  src/app.ts              the app
  test/app.test.ts        vitest: the conformance suite and the app's own tests,
                          against the CloudBase zip and the Lambda handlers as they ship
  tsconfig.json, README.md, .gitignore
Then: cd DIR && npm install && npm test, and npm start to run it locally.

Options:
  --template T       counter (default: a room counter with its own routes and
                     an authenticate hook) or chat (the built-in chat)
  --cloudsocket SPEC the dependency on cloudsocket written to package.json
                     (default ^VERSION of this cloudsocket; a path or file: URL
                     to a packed tarball works too)
  -h, --help         show this help`,
  async run(argv) {
    const { values, positionals } = parseFlags('init', argv, { template: { type: 'string' }, cloudsocket: { type: 'string' } }, true);
    if (values.help) {
      console.log(initCommand.help);
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError('init: name one folder to create, e.g. cloudsocket init my-app (see cloudsocket init --help)');
    const template = (values.template ?? 'counter') as Template;
    if (!TEMPLATES.includes(template)) throw new UsageError(`init: --template must be one of ${TEMPLATES.join(', ')}, got ${JSON.stringify(values.template)}`);
    const folder = positionals[0]!;
    // An empty name would resolve to the working directory, which is not a new folder.
    if (folder.trim() === '') throw new UsageError('init: the folder name is empty; name a new folder, e.g. cloudsocket init my-app');
    const target = resolve(folder);
    const existing = await stat(target).catch(() => undefined);
    if (existing && !existing.isDirectory()) throw new UsageError(`init: ${folder} is a file, not a folder; name a new folder`);
    if (existing && (await readdir(target)).length > 0) throw new UsageError(`init: ${folder} is not empty; name a new folder`);

    const ours = JSON.parse(readFileSync(join(packageRoot, existsSync(join(packageRoot, 'package.json')) ? '' : '..', 'package.json'), 'utf8')) as PackageJson;
    const name = packageName(basename(target));
    const replacements: Record<string, string> = {
      name,
      cloudsocket: dependencySpec(values.cloudsocket, ours.version),
      // The versions this cloudsocket is tested with.
      typescript: ours.devDependencies?.typescript ?? '^5',
      vitest: ours.devDependencies?.vitest ?? '^4',
      '@types/node': ours.devDependencies?.['@types/node'] ?? '^20',
    };

    await mkdir(target, { recursive: true });
    await cp(join(templatesDir, template), target, { recursive: true });
    await rename(join(target, 'gitignore'), join(target, '.gitignore'));
    for (const file of ['package.json', 'README.md']) {
      const path = join(target, file);
      const text = await readFile(path, 'utf8');
      await writeFile(path, text.replace(/\{\{([@\w/-]+)\}\}/g, (_, key: string) => replacements[key] ?? `{{${key}}}`));
    }
    const shown = relative(process.cwd(), target) || '.';
    console.log(`created ${shown} (${template} template)`);
    console.log('');
    console.log(`  cd ${shellQuoted(shown)}`);
    console.log('  npm install');
    console.log('  npm test      # both targets, as they ship');
    console.log('  npm start     # run it locally');
    return 0;
  },
};

interface PackageJson {
  version: string;
  devDependencies?: Record<string, string>;
}

/** The folder as a shell takes it from a pasted line: quoted when it holds anything but safe characters. */
function shellQuoted(path: string): string {
  return /^[\w./@%+=:,-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}

function packageName(folder: string): string {
  const cleaned = folder.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  return cleaned || 'cloudsocket-app';
}

/** A local tarball or folder becomes a file: spec npm resolves from the new project. */
function dependencySpec(flag: string | undefined, version: string): string {
  if (flag === undefined) return `^${version}`;
  if (flag.startsWith('file:') || flag.startsWith('.') || flag.startsWith('/')) {
    const path = resolve(flag.replace(/^file:/, ''));
    if (!existsSync(path)) throw new UsageError(`init: --cloudsocket ${flag}: no such file or folder`);
    return `file:${path}`;
  }
  return flag;
}
