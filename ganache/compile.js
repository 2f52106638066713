#!/usr/bin/env node
// Compiles with the pinned solc-js: Solidity standard JSON in on stdin, standard JSON out on
// stdout. Imports such as "@openzeppelin/contracts/..." resolve from this folder's node_modules,
// so the compiler never downloads anything. Used by `python -m facemarket.contracts.build`.
"use strict";

const fs = require("fs");
const path = require("path");
const solc = require("solc");

function findImports(importPath) {
  try {
    const file = require.resolve(importPath, { paths: [__dirname] });
    return { contents: fs.readFileSync(file, "utf8") };
  } catch (err) {
    return { error: `import not found in ${path.join(__dirname, "node_modules")}: ${importPath}` };
  }
}

const input = fs.readFileSync(0, "utf8");
const output = solc.compile(input, { import: findImports });
process.stdout.write(JSON.stringify({ version: solc.version(), output: JSON.parse(output) }));
