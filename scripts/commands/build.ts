import { resolve } from 'node:path';
import { buildAll } from '../build.js';
import { loadProject } from '../project.js';
import { parseFlags, type Command } from '../cli-args.js';

export const buildCommand: Command = {
  name: 'build',
  summary: 'bundle every target into dist/ (dist/cloudbase.zip, ...)',
  help: `Usage: cloudsocket build [--out DIR]

Bundles the project's app (cloudsocket.config.ts, found from here upward; the
built-in chat without one) with each target's adapter into one file per
function that needs no node_modules, with source maps, and zips it:
  dist/cloudbase/         the CloudBase function folder (scf_bootstrap, index.mjs, public/)
  dist/cloudbase.zip      the same, ready to upload
  dist/cloudbaserc.json   the function's CloudBase configuration, from the config
  dist/aws/*.mjs          the Lambda handlers (connect, message, disconnect, welcome)
  dist/aws/lambda.zip     those files, the code of every function in the template
  dist/aws/template.yaml  the CloudFormation template, from the config (or aws.template)

Options:
  --out DIR    write to DIR instead of the config's outDir (dist/)
  -h, --help   show this help`,
  async run(argv) {
    const { values } = parseFlags('build', argv, { out: { type: 'string' } });
    if (values.help) {
      console.log(buildCommand.help);
      return 0;
    }
    const project = await loadProject();
    await buildAll(values.out ? { ...project, outDir: resolve(values.out) } : project, (line) => console.log(line));
    return 0;
  },
};
