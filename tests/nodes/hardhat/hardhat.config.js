// Hardhat Network for tests/test_second_node.py: a node other than Ganache, started by
// tests/fixtures/hardhat.py with `hardhat node`. Nothing here compiles (the tests deploy the
// contracts' committed artifacts), so no solc is downloaded.
module.exports = {
  networks: {
    hardhat: {
      chainId: 31337,            // not Ganache's 1337: nothing may assume it
      hardfork: "shanghai",      // what the contracts are compiled for (evmVersion in contracts/build.py)
      initialBaseFeePerGas: 1_000_000_000,
      mining: { auto: true, interval: 0 },
    },
  },
};
