#!/usr/bin/env node
import { dispatch } from './dispatch.js';

// The `fapi-bff` command (package.json "bin"). The only side effect is running the dispatcher.
const status = await dispatch({
  args: process.argv.slice(2),
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
});
if (status !== undefined) process.exitCode = status;
