#!/usr/bin/env node
// The rollhook CLI (`npx rollhook --help`). Node 24 runs this file as is; inside the repo,
// npx puts the node@24 dev dependency first on the PATH.
import { runCli } from '../src/cli/program.ts';

process.exitCode = await runCli(process.argv.slice(2), {
  env: process.env,
  io: {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    isTTY: process.stderr.isTTY === true,
  },
});
