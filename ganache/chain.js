#!/usr/bin/env node
// Starts a deterministic local chain with the pinned Ganache: chain id 1337, a fixed mnemonic,
// funded accounts, on one port. With --state DIR the chain is kept in DIR (persistent across
// restarts); without it, the chain lives in memory and is gone when the process ends.
// Prints one JSON line {"url", "chainId", "pid", "accounts": [address, ...]} once it listens,
// and stops cleanly on SIGTERM or SIGINT. Ganache's own log goes to stderr only with --verbose.
// With --block-time S it mines a block every S seconds (Ganache's --miner.blockTime), as a public
// chain does, instead of one block per transaction at once. --hardfork berlin gives a chain
// before EIP-1559 (no base fee, legacy gas prices only), as some chains still are.
// Without --block-time it mines each transaction as it arrives (Ganache's "eager" instamine: the
// answer to eth_sendRawTransaction comes once it is mined), and it takes what changes the chain
// one request at a time (see serialiseWrites).
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

// What changes the chain: sent transactions and the test methods that mine, move time or revert.
const WRITES = new Set(["eth_sendRawTransaction", "eth_sendTransaction", "evm_mine", "evm_revert", "evm_snapshot",
                        "evm_increaseTime", "evm_setTime"]);
// How long one write may hold the others back: a transaction with a nonce too high is answered
// only once the gap is filled, which may never happen.
const WRITE_TURN_MS = 2000;

// Ganache 7.9's miner strands a transaction that arrives while a block is being mined: it waits
// until some later transaction comes, a copy sent meanwhile is refused ("can't be replaced, mining
// has already started"), and in both instamine modes the chain stalled for good under many senders
// at once (agents claiming while consumers pay, in the full test suite). Taking writes one at a
// time, each once the previous one is mined, keeps the miner from ever being busy when one comes.
// Reads (calls, receipts, logs) are not held back.
function serialiseWrites(provider) {
  const requestRaw = provider._requestRaw.bind(provider);
  let previous = Promise.resolve();
  provider._requestRaw = (request) => {
    if (!WRITES.has(request.method)) return requestRaw(request);
    const turn = previous.then(() => requestRaw(request));
    previous = turn.then(
      ({ value }) => Promise.race([value.catch(() => {}), new Promise((done) => setTimeout(done, WRITE_TURN_MS))]),
      () => {});
    return turn;
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const options = {
    chain: { chainId: 1337, networkId: 1337, hardfork: args.hardfork },
    wallet: { mnemonic: args.mnemonic, totalAccounts: args.accounts, defaultBalance: 10000 },
    miner: args.blockTime > 0 ? { blockTime: args.blockTime } : { instamine: "eager" },
    logging: { quiet: !args.verbose, logger: { log: args.verbose ? (...m) => console.error(...m) : () => {} } },
  };
  if (args.state) options.database = { dbPath: args.state };
  const server = ganache.server(options);
  serialiseWrites(server.provider);
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
