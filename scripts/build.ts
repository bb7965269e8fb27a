/**
 * `cloudsocket build`: bundles each target into one file that runs with no
 * node_modules beside it, and zips it the way its platform expects.
 */
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build as esbuild, type BuildOptions } from 'esbuild';
import yazl from 'yazl';
import { loadPage } from './page.js';

export const projectRoot = fileURLToPath(new URL('..', import.meta.url));

/** Where builds go: dist/, unless CLOUDSOCKET_DIST_DIR says otherwise (tests build side by side). */
export const distDir = process.env.CLOUDSOCKET_DIST_DIR ? resolve(process.env.CLOUDSOCKET_DIST_DIR) : join(projectRoot, 'dist');

/** ESM bundles still meet CommonJS `require` inside dependencies (ws); give them one. */
const REQUIRE_SHIM = "import { createRequire as __cloudsocketCreateRequire } from 'node:module'; const require = __cloudsocketCreateRequire(import.meta.url);";

export const BUNDLE_DEFAULTS: BuildOptions = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  // node18 is the oldest runtime scf_bootstrap may pick on CloudBase.
  target: 'node18',
  minify: true,
  keepNames: true,
  legalComments: 'none',
  banner: { js: REQUIRE_SHIM },
  // ws probes these optional native add-ons inside try/catch; without them it uses JS.
  external: ['bufferutil', 'utf-8-validate'],
  logLevel: 'silent',
};

export interface ZipEntry {
  /** Path inside the zip. */
  name: string;
  /** File on disk. */
  source: string;
  /** Unix mode inside the zip, e.g. 0o755. */
  mode: number;
}

export async function writeZip(zipPath: string, entries: readonly ZipEntry[]): Promise<void> {
  const zip = new yazl.ZipFile();
  // A fixed date keeps the zip byte-identical across builds of the same sources.
  const mtime = new Date('2020-01-01T00:00:00Z');
  for (const entry of entries) {
    zip.addBuffer(await readFile(entry.source), entry.name, { mode: 0o100000 | entry.mode, mtime });
  }
  zip.end();
  await new Promise<void>((resolve, reject) => {
    zip.outputStream.pipe(createWriteStream(zipPath)).on('close', resolve).on('error', reject);
  });
}

export interface CloudbaseArtifact {
  /** dist/cloudbase: the function's folder, runnable as is. */
  directory: string;
  /** dist/cloudbase.zip: the same folder, zipped for upload. */
  zip: string;
}

export async function buildCloudbase(outDir = distDir): Promise<CloudbaseArtifact> {
  const directory = join(outDir, 'cloudbase');
  await rm(directory, { recursive: true, force: true });
  await mkdir(join(directory, 'public'), { recursive: true });

  await esbuild({
    ...BUNDLE_DEFAULTS,
    entryPoints: [join(projectRoot, 'functions/cloudbase/main.ts')],
    outfile: join(directory, 'index.mjs'),
  });
  await writeFile(join(directory, 'public/index.html'), await loadPage());
  // CloudBase runs scf_bootstrap with bash; CRLF endings would break the shebang.
  const bootstrap = (await readFile(join(projectRoot, 'functions/cloudbase/scf_bootstrap'), 'utf8')).replace(/\r\n/g, '\n');
  await writeFile(join(directory, 'scf_bootstrap'), bootstrap);
  await chmod(join(directory, 'scf_bootstrap'), 0o755);

  const zip = join(outDir, 'cloudbase.zip');
  await writeZip(zip, [
    { name: 'scf_bootstrap', source: join(directory, 'scf_bootstrap'), mode: 0o755 },
    { name: 'index.mjs', source: join(directory, 'index.mjs'), mode: 0o644 },
    { name: 'public/index.html', source: join(directory, 'public/index.html'), mode: 0o644 },
  ]);
  return { directory, zip };
}

/** The Lambda handlers; the template's Handler strings are `<name>.handler`. */
export const AWS_HANDLERS = ['connect', 'message', 'disconnect', 'welcome'] as const;

export interface AwsArtifact {
  /** dist/aws: one self-contained .mjs per handler. */
  directory: string;
  /** dist/aws/lambda.zip: those files at the zip's root, the code of every function in the template. */
  zip: string;
}

export async function buildAws(outDir = distDir): Promise<AwsArtifact> {
  const directory = join(outDir, 'aws');
  await rm(directory, { recursive: true, force: true });
  await mkdir(directory, { recursive: true });
  // No code splitting: each function loads one file, and the zip holds exactly the handlers.
  await esbuild({
    ...BUNDLE_DEFAULTS,
    entryPoints: AWS_HANDLERS.map((name) => ({ in: join(projectRoot, `functions/aws/${name}.ts`), out: name })),
    outdir: directory,
    outExtension: { '.js': '.mjs' },
  });
  const zip = join(directory, 'lambda.zip');
  await writeZip(
    zip,
    AWS_HANDLERS.map((name) => ({ name: `${name}.mjs`, source: join(directory, `${name}.mjs`), mode: 0o644 })),
  );
  return { directory, zip };
}

/** Source trees whose changes make a build stale. */
const SOURCE_DIRS = ['shared', 'functions', 'clients', 'scripts', 'infra'];

/** True when some source file is newer than `artifact` (or it is missing). */
export async function isStale(artifact: string): Promise<boolean> {
  const built = await stat(artifact).then((s) => s.mtimeMs, () => -1);
  if (built < 0) return true;
  for (const dir of SOURCE_DIRS) {
    const files = await readdir(join(projectRoot, dir), { recursive: true, withFileTypes: true }).catch(() => []);
    for (const file of files) {
      if (!file.isFile()) continue;
      const path = join(file.parentPath, file.name);
      if ((await stat(path)).mtimeMs > built) return true;
    }
  }
  for (const file of ['package-lock.json']) {
    if ((await stat(join(projectRoot, file)).then((s) => s.mtimeMs, () => 0)) > built) return true;
  }
  return false;
}

export async function buildAll(outDir?: string, log: (line: string) => void = () => {}): Promise<void> {
  const cloudbase = await buildCloudbase(outDir);
  log(`built ${relative(process.cwd(), cloudbase.zip) || cloudbase.zip} (${(await stat(cloudbase.zip)).size} bytes)`);
  const aws = await buildAws(outDir);
  log(`built ${relative(process.cwd(), aws.zip) || aws.zip} (${(await stat(aws.zip)).size} bytes)`);
}
