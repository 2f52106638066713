"""The payment contracts and their Python side.

Solidity sources (`*.sol`) and committed artifacts (`artifacts/`); `build` compiles them with the
pinned solc-js; `artifacts` loads them; `deploy` and `deployment` put a set on a chain and record
where; `bind` gives web3 contract objects and `view_calls` reads them with bare eth_calls;
`typed_messages` is the EIP-712 Invocation, Receipt and Permit; `transactions` signs and sends;
`localchain` and `background_chain` run the local Ganache.
"""
