// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title FaceToken: the token consumers pay services with.
/// @notice ERC-20 with EIP-2612 permit, so a consumer opens and funds a job in one transaction
/// without a prior approve. 8 decimals like the AGI token it stands in for. The owner mints on
/// test chains.
contract FaceToken is ERC20, ERC20Permit, Ownable {
    constructor() ERC20("facemarket token", "FACE") ERC20Permit("facemarket token") Ownable(msg.sender) {}

    /// @notice 8 decimals, like AGI.
    function decimals() public pure override returns (uint8) {
        return 8;
    }

    /// @notice Creates `amount` tokens for `to`. Only the owner (the deployer on a test chain).
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
