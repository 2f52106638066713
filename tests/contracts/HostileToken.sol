// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice Test-only: a token that re-enters the escrow from inside a transfer. It is also the
/// party (consumer or agent) of the jobs it attacks, so the re-entered call passes the escrow's
/// caller checks and only the escrow's state can stop it.
contract HostileToken is ERC20 {
    address public escrow;
    bytes private _reentry;
    uint256 public reentries;
    bool public reentrySucceeded;
    bytes public reentryResult;

    constructor() ERC20("Hostile", "HOST") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice The escrow to attack; this contract lets it spend its own tokens.
    function setEscrow(address escrow_) external {
        escrow = escrow_;
        _approve(address(this), escrow_, type(uint256).max);
    }

    /// @notice Calls the escrow as this contract; bubbles up a revert.
    function act(bytes calldata call) external {
        (bool ok, bytes memory result) = escrow.call(call);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 32), mload(result))
            }
        }
    }

    /// @notice The call to make, once, from inside the next transfer.
    function arm(bytes calldata call) external {
        _reentry = call;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (_reentry.length != 0) {
            bytes memory call = _reentry;
            delete _reentry;
            reentries += 1;
            (reentrySucceeded, reentryResult) = escrow.call(call);
        }
    }
}
