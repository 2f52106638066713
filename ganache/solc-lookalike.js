#!/usr/bin/env node
// A `solc` look-alike over the pinned solc-js, for tools that run a solc binary (Slither through
// crytic-compile): answers `--version` and `--standard-json` (standard JSON on stdin, out on
// stdout). Sources given by URL or import path are read from the working directory, else
// resolved from this folder's node_modules like compile.js does, so nothing is downloaded.
// FACEMARKET_SOLC_SETTINGS (JSON) is merged into the request's settings, so a tool that cannot
// set viaIR or the EVM version compiles as contracts/build.py does. tools/slither_check.py runs it.
"use strict";

const fs = require("fs");
const path = require("path");
const solc = require("solc");

function findImports(importPath) {
  if (fs.existsSync(importPath)) return { contents: fs.readFileSync(importPath, "utf8") };
  try {
    const file = require.resolve(importPath, { paths: [__dirname] });
    return { contents: fs.readFileSync(file, "utf8") };
  } catch (err) {
    return { error: `not found in ${process.cwd()} nor ${path.join(__dirname, "node_modules")}: ${importPath}` };
  }
}

const args = process.argv.slice(2);
if (args.includes("--version")) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
} else if (args.includes("--standard-json")) {
  const request = JSON.parse(fs.readFileSync(0, "utf8"));
  request.settings = { ...request.settings, ...JSON.parse(process.env.FACEMARKET_SOLC_SETTINGS || "{}") };
  process.stdout.write(solc.compile(JSON.stringify(request), { import: findImports }));
} else {
  process.stderr.write("solc-lookalike.js: only --version and --standard-json are supported\n");
  process.exit(2);
}
