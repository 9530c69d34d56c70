#!/usr/bin/env node
// The `ae` CLI runs straight from the TypeScript sources (no build step): tsx compiles on load.
require('tsx/cjs');
require('../cli/main.ts')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  })
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
