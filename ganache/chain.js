#!/usr/bin/env node
// Starts a deterministic local chain with the pinned Ganache: chain id 1337, a fixed mnemonic,
// funded accounts, on one port. With --state DIR the chain is kept in DIR (persistent across
// restarts); without it, the chain lives in memory and is gone when the process ends.
// Prints one JSON line {"url", "chainId", "pid", "accounts": [address, ...]} once it listens,
// and stops cleanly on SIGTERM or SIGINT. Ganache's own log goes to stderr only with --verbose.
// With --block-time S it mines a block every S seconds (Ganache's --miner.blockTime), as a public
// chain does, instead of one block per transaction at once. --hardfork berlin gives a chain
// before EIP-1559 (no base fee, legacy gas prices only), as some chains still are.
// Without --block-time it mines as soon as transactions arrive, in Ganache's "strict" instamine:
// eth_sendRawTransaction answers with the hash and the miner keeps mining while more arrive.
// Not "eager" (the answer after mining): there, a transaction that arrives while a block is being
// mined waits until some other transaction comes, and a copy sent meanwhile is refused ("can't be
// replaced, mining has already started"); with many senders at once (agents claiming while
// consumers pay) the chain stalled for good in the full test suite.
//
//   node chain.js --port 8545 [--host 127.0.0.1] [--state DIR] [--accounts 10] [--mnemonic "..."]
//                 [--block-time SECONDS] [--hardfork shanghai]
"use strict";

const ganache = require("ganache");

const DEFAULT_MNEMONIC = "test test test test test test test test test test test junk";

function parseArgs(argv) {
  const args = { port: 8545, host: "127.0.0.1", state: null, accounts: 10, mnemonic: DEFAULT_MNEMONIC, verbose: false,
                 blockTime: 0, hardfork: "shanghai" };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
      return argv[++i];
    };
    if (flag === "--port") args.port = Number(value());
    else if (flag === "--host") args.host = value();
    else if (flag === "--state") args.state = value();
    else if (flag === "--accounts") args.accounts = Number(value());
    else if (flag === "--mnemonic") args.mnemonic = value();
    else if (flag === "--verbose") args.verbose = true;
    else if (flag === "--hardfork") args.hardfork = value();
    else if (flag === "--block-time") {
      args.blockTime = Number(value());
      if (!(args.blockTime >= 0)) throw new Error("--block-time needs a number of seconds, 0 or more");
    }
    else throw new Error(`unknown option ${flag}`);
  }
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const options = {
    chain: { chainId: 1337, networkId: 1337, hardfork: args.hardfork },
    wallet: { mnemonic: args.mnemonic, totalAccounts: args.accounts, defaultBalance: 10000 },
    miner: args.blockTime > 0 ? { blockTime: args.blockTime } : { instamine: "strict" },
    logging: { quiet: !args.verbose, logger: { log: args.verbose ? (...m) => console.error(...m) : () => {} } },
  };
  if (args.state) options.database = { dbPath: args.state };
  const server = ganache.server(options);
  // Handlers first: the port answers before listen() resolves, and a stop may come at any time.
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await server.close(); // flushes the state folder when there is one
    } finally {
      process.exit(0);
    }
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);

  await server.listen(args.port, args.host);
  const accounts = Object.keys(server.provider.getInitialAccounts());
  const url = `http://${args.host}:${args.port}`;
  process.stdout.write(JSON.stringify({ url, chainId: 1337, pid: process.pid, accounts }) + "\n");
}

main().catch((err) => {
  console.error(`chain.js: ${err.message}`);
  process.exit(1);
});
