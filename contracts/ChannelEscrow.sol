// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28; // the pinned solc: free of the severe bugs Slither lists for ^0.8.20

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

/// @title ChannelEscrow: one deposit pays many calls, with no transaction per call.
/// @notice A consumer opens a channel to an agent with a deposit and an expiry. Each call carries
/// an EIP-712 `Voucher(channelId, amount, requestHash)` for the cumulative amount authorised so
/// far, signed by the channel's signer (a session key) or by the consumer. The agent claims with
/// the highest voucher it holds, any number of times, and is paid the difference to what it
/// already claimed. There is no nonce: every voucher of a channel stays valid across a claim, so
/// vouchers in flight during a claim still pay. After expiry the consumer takes back the rest.
/// @dev No reentrancy guard: every function checks, then writes its state and emits, and only
/// then calls the token (checks-effects-interactions), so a re-entered call sees the new state.
/// The EIP-712 domain ("facemarket ChannelEscrow", "1", chain id, this address) is published by
/// eip712Domain() (ERC-5267).
contract ChannelEscrow is EIP712 {
    using SafeERC20 for IERC20;

    struct Channel {
        address consumer;
        address agent;
        address signer;
        uint256 deposit;
        uint256 claimed;
        uint64 expiresAt;
        address oldSigner;
        uint64 oldSignerUntil;
        bool closed;
    }

    /// @dev A channel in four slots (five once a signer was changed): a claim reads the first
    /// three and writes only the last (deposit and claimed share it).
    struct Stored {
        address consumer; // slot 0, with expiresAt and closed
        uint64 expiresAt;
        bool closed;
        address agent; // slot 1
        address signer; // slot 2, with oldSignerUntil
        uint64 oldSignerUntil;
        address oldSigner; // slot 3
        uint128 deposit; // slot 4
        uint128 claimed;
    }

    bytes32 public constant VOUCHER_TYPEHASH = keccak256("Voucher(uint256 channelId,uint256 amount,bytes32 requestHash)");
    /// @notice How long the previous signer's vouchers stay claimable after setSigner.
    uint256 public constant SIGNER_GRACE = 1 days;

    IERC20Permit public immutable token;

    mapping(uint256 => Stored) private _channels;
    uint256 private _nextChannelId;

    event ChannelOpened(
        uint256 indexed channelId,
        address indexed consumer,
        address indexed agent,
        address signer,
        uint256 deposit,
        uint64 expiresAt
    );
    /// @notice `deposit` is the channel's new total deposit.
    event ChannelToppedUp(uint256 indexed channelId, uint256 deposit);
    event ChannelExtended(uint256 indexed channelId, uint64 expiresAt);
    event ChannelSignerChanged(uint256 indexed channelId, address signer, address oldSigner, uint64 oldSignerUntil);
    /// @notice `claimed` is the channel's new total claimed, `paid` what this claim paid.
    event ChannelClaimed(uint256 indexed channelId, address indexed agent, uint256 claimed, uint256 paid);
    /// @notice A batch entry that failed a check; `reason` is the selector of the error claim would raise.
    event ChannelClaimSkipped(uint256 indexed channelId, address indexed agent, bytes4 reason);
    event ChannelReclaimed(uint256 indexed channelId, address indexed consumer, uint256 refunded);

    /// @notice A channel needs an agent.
    error ZeroAgent();
    /// @notice A channel needs a signer (the consumer itself, or a session key).
    error ZeroSigner();
    /// @notice A deposit or top-up must be above zero.
    error ZeroDeposit();
    /// @notice A channel's total deposit must fit the 128 bits it is stored in.
    error DepositTooLarge(uint256 deposit, uint256 max);
    /// @notice expiresAt must be later than the current block's timestamp.
    error ExpiryNotInFuture(uint64 expiresAt, uint256 blockTimestamp);
    /// @notice extend must move the expiry later than it is.
    error ExpiryNotLater(uint256 channelId, uint64 expiresAt, uint64 current);
    /// @notice A batch needs at least one entry.
    error ZeroCount();
    /// @notice No channel has this id.
    error UnknownChannel(uint256 channelId);
    /// @notice Only the channel's consumer may do this.
    error NotChannelConsumer(uint256 channelId, address caller, address consumer);
    /// @notice Only the channel's agent may claim.
    error NotChannelAgent(uint256 channelId, address caller, address agent);
    /// @notice The channel was reclaimed: nothing more can happen to it.
    error ChannelIsClosed(uint256 channelId);
    /// @notice The channel expired at `expiresAt`: no more top-ups or claims.
    error ChannelExpired(uint256 channelId, uint64 expiresAt);
    /// @notice The channel expires at `expiresAt`: it cannot be reclaimed before.
    error ChannelNotExpired(uint256 channelId, uint64 expiresAt);
    /// @notice The previous signer's grace runs until `oldSignerUntil`: the signer cannot change
    /// again before (else a consumer could drop a signer's vouchers by changing twice).
    error SignerChangePending(uint256 channelId, uint64 oldSignerUntil);
    /// @notice The Voucher recovers to `signer`, which is neither the channel's signer, its old
    /// signer within the grace, nor its consumer (zero for a malformed or malleable signature).
    error InvalidVoucherSignature(uint256 channelId, address signer);
    /// @notice A claim must raise the claimed total (a replayed or lower voucher does not).
    error AmountNotAboveClaimed(uint256 channelId, uint256 amount, uint256 claimed);
    /// @notice A claim cannot exceed the voucher that authorises it.
    error AmountAboveVoucher(uint256 channelId, uint256 amount, uint256 voucherAmount);
    /// @notice A claim cannot exceed the channel's deposit.
    error AmountAboveDeposit(uint256 channelId, uint256 amount, uint256 deposit);
    /// @notice claimMany needs one amount, voucher amount, request hash and signature per channel id.
    error LengthMismatch(uint256 channelIds, uint256 amounts, uint256 voucherAmounts, uint256 requestHashes, uint256 signatures);

    constructor(IERC20Permit token_) EIP712("facemarket ChannelEscrow", "1") {
        token = token_;
        _nextChannelId = 1;
    }

    // ---------------------------------------------------------------- open, top up, extend, signer

    /// @notice Opens a channel to `agent` and moves `deposit` into it (approve first).
    function openChannel(address agent, address signer, uint256 deposit, uint64 expiresAt)
        external
        returns (uint256 channelId)
    {
        channelId = _open(agent, signer, deposit, expiresAt);
        IERC20(address(token)).safeTransferFrom(msg.sender, address(this), deposit);
    }

    /// @notice openChannel in one transaction, with an EIP-2612 permit for `deposit` instead of an approve.
    function openChannelWithPermit(
        address agent,
        address signer,
        uint256 deposit,
        uint64 expiresAt,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint256 channelId) {
        channelId = _open(agent, signer, deposit, expiresAt);
        _permit(deposit, deadline, v, r, s);
        IERC20(address(token)).safeTransferFrom(msg.sender, address(this), deposit);
    }

    /// @notice Adds `amount` to an open, unexpired channel of the caller (approve first).
    function topUp(uint256 channelId, uint256 amount) external {
        _topUp(channelId, amount);
        IERC20(address(token)).safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice topUp with an EIP-2612 permit for `amount` instead of an approve.
    function topUpWithPermit(uint256 channelId, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
    {
        _topUp(channelId, amount);
        _permit(amount, deadline, v, r, s);
        IERC20(address(token)).safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Moves the expiry of an open channel of the caller later (also after it passed, while not reclaimed).
    function extend(uint256 channelId, uint64 expiresAt) external {
        Stored storage channel = _consumersOpenChannel(channelId);
        if (expiresAt <= block.timestamp) revert ExpiryNotInFuture(expiresAt, block.timestamp);
        uint64 current = channel.expiresAt;
        if (expiresAt <= current) revert ExpiryNotLater(channelId, expiresAt, current);
        channel.expiresAt = expiresAt;
        emit ChannelExtended(channelId, expiresAt);
    }

    /// @notice Names a new signer; the previous one's vouchers stay claimable for SIGNER_GRACE,
    /// so calls already served cannot be dodged by swapping keys.
    function setSigner(uint256 channelId, address signer) external {
        Stored storage channel = _consumersOpenChannel(channelId);
        if (signer == address(0)) revert ZeroSigner();
        uint64 pending = channel.oldSignerUntil;
        if (block.timestamp < pending) revert SignerChangePending(channelId, pending);
        address previous = channel.signer;
        uint64 until = uint64(block.timestamp + SIGNER_GRACE);
        channel.oldSigner = previous;
        channel.oldSignerUntil = until;
        channel.signer = signer;
        emit ChannelSignerChanged(channelId, signer, previous, until);
    }

    // ---------------------------------------------------------------- claim

    /// @notice The channel's agent raises the claimed total to `amount` (at most the voucher's
    /// amount and the deposit) and is paid the difference.
    function claim(
        uint256 channelId,
        uint256 amount,
        uint256 voucherAmount,
        bytes32 requestHash,
        bytes calldata signature
    ) external {
        (bytes memory failure, uint256 paid) = _claim(channelId, amount, voucherAmount, requestHash, signature);
        if (failure.length != 0) {
            assembly ("memory-safe") {
                revert(add(failure, 32), mload(failure))
            }
        }
        IERC20(address(token)).safeTransfer(msg.sender, paid);
    }

    /// @notice Claims on many channels; entries failing a check are skipped (ChannelClaimSkipped),
    /// the agent is paid the sum of the rest in one transfer.
    function claimMany(
        uint256[] calldata channelIds,
        uint256[] calldata amounts,
        uint256[] calldata voucherAmounts,
        bytes32[] calldata requestHashes,
        bytes[] calldata signatures
    ) external {
        uint256 n = channelIds.length;
        if (amounts.length != n || voucherAmounts.length != n || requestHashes.length != n || signatures.length != n) {
            revert LengthMismatch(n, amounts.length, voucherAmounts.length, requestHashes.length, signatures.length);
        }
        if (n == 0) revert ZeroCount();
        uint256 total = 0;
        for (uint256 i; i < n;) {
            (bytes memory failure, uint256 paid) =
                _claim(channelIds[i], amounts[i], voucherAmounts[i], requestHashes[i], signatures[i]);
            if (failure.length != 0) {
                emit ChannelClaimSkipped(channelIds[i], msg.sender, bytes4(failure));
            }
            unchecked {
                total += paid; // each payment < 2**128 and the contract holds them all: no overflow
                ++i;
            }
        }
        if (total != 0) IERC20(address(token)).safeTransfer(msg.sender, total);
    }

    // ---------------------------------------------------------------- reclaim

    /// @notice After expiry, the consumer takes back what was not claimed and closes the channel.
    function reclaim(uint256 channelId) external {
        Stored storage channel = _consumersOpenChannel(channelId);
        uint64 expiresAt = channel.expiresAt;
        if (block.timestamp < expiresAt) revert ChannelNotExpired(channelId, expiresAt);
        uint256 refunded = channel.deposit - channel.claimed;
        channel.closed = true;
        emit ChannelReclaimed(channelId, msg.sender, refunded);
        if (refunded != 0) IERC20(address(token)).safeTransfer(msg.sender, refunded);
    }

    // ---------------------------------------------------------------- views

    /// @notice The channel `channelId`; all zero when there is none.
    function getChannel(uint256 channelId) external view returns (Channel memory) {
        Stored storage c = _channels[channelId];
        return Channel(c.consumer, c.agent, c.signer, c.deposit, c.claimed, c.expiresAt, c.oldSigner, c.oldSignerUntil, c.closed);
    }

    /// @notice The id the next channel will get.
    function nextChannelId() external view returns (uint256) {
        return _nextChannelId;
    }

    /// @notice The EIP-712 digest the signer signs for a Voucher.
    function voucherDigest(uint256 channelId, uint256 amount, bytes32 requestHash) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(VOUCHER_TYPEHASH, channelId, amount, requestHash)));
    }

    // ---------------------------------------------------------------- internals

    function _open(address agent, address signer, uint256 deposit, uint64 expiresAt) private returns (uint256 channelId) {
        if (agent == address(0)) revert ZeroAgent();
        if (signer == address(0)) revert ZeroSigner();
        if (deposit == 0) revert ZeroDeposit();
        if (deposit > type(uint128).max) revert DepositTooLarge(deposit, type(uint128).max);
        if (expiresAt <= block.timestamp) revert ExpiryNotInFuture(expiresAt, block.timestamp);
        channelId = _nextChannelId++;
        Stored storage channel = _channels[channelId];
        channel.consumer = msg.sender;
        channel.expiresAt = expiresAt;
        channel.agent = agent;
        channel.signer = signer;
        channel.deposit = uint128(deposit);
        emit ChannelOpened(channelId, msg.sender, agent, signer, deposit, expiresAt);
    }

    function _topUp(uint256 channelId, uint256 amount) private {
        Stored storage channel = _consumersOpenChannel(channelId);
        if (amount == 0) revert ZeroDeposit();
        uint64 expiresAt = channel.expiresAt;
        if (block.timestamp >= expiresAt) revert ChannelExpired(channelId, expiresAt);
        uint256 deposit = channel.deposit + amount;
        if (deposit > type(uint128).max) revert DepositTooLarge(deposit, type(uint128).max);
        channel.deposit = uint128(deposit);
        emit ChannelToppedUp(channelId, deposit);
    }

    /// @dev The caller's channel `channelId`, known and not closed; reverts otherwise.
    function _consumersOpenChannel(uint256 channelId) private view returns (Stored storage channel) {
        channel = _channels[channelId];
        address consumer = channel.consumer;
        if (consumer == address(0)) revert UnknownChannel(channelId);
        if (msg.sender != consumer) revert NotChannelConsumer(channelId, msg.sender, consumer);
        if (channel.closed) revert ChannelIsClosed(channelId);
    }

    /// @dev Checks one claim and, when it passes, raises the claimed total and returns what to
    /// pay; otherwise returns the encoded error (and changes nothing). The caller pays.
    function _claim(
        uint256 channelId,
        uint256 amount,
        uint256 voucherAmount,
        bytes32 requestHash,
        bytes calldata signature
    ) private returns (bytes memory failure, uint256 paid) {
        Stored storage channel = _channels[channelId];
        address consumer = channel.consumer;
        if (consumer == address(0)) return (abi.encodeWithSelector(UnknownChannel.selector, channelId), 0);
        address agent = channel.agent;
        if (msg.sender != agent) {
            return (abi.encodeWithSelector(NotChannelAgent.selector, channelId, msg.sender, agent), 0);
        }
        if (channel.closed) return (abi.encodeWithSelector(ChannelIsClosed.selector, channelId), 0);
        uint64 expiresAt = channel.expiresAt;
        if (block.timestamp >= expiresAt) {
            return (abi.encodeWithSelector(ChannelExpired.selector, channelId, expiresAt), 0);
        }
        uint256 claimed = channel.claimed;
        if (amount <= claimed) {
            return (abi.encodeWithSelector(AmountNotAboveClaimed.selector, channelId, amount, claimed), 0);
        }
        if (amount > voucherAmount) {
            return (abi.encodeWithSelector(AmountAboveVoucher.selector, channelId, amount, voucherAmount), 0);
        }
        uint256 deposit = channel.deposit;
        if (amount > deposit) {
            return (abi.encodeWithSelector(AmountAboveDeposit.selector, channelId, amount, deposit), 0);
        }
        address signer = _signerOf(voucherDigest(channelId, voucherAmount, requestHash), signature);
        if (!_maySign(channel, consumer, signer)) {
            return (abi.encodeWithSelector(InvalidVoucherSignature.selector, channelId, signer), 0);
        }
        channel.claimed = uint128(amount); // amount <= deposit < 2**128
        paid = amount - claimed;
        emit ChannelClaimed(channelId, agent, amount, paid);
        return ("", paid);
    }

    /// @dev Whether `signer` may sign the channel's vouchers: its signer, its consumer, or its
    /// previous signer until oldSignerUntil. Zero (a bad signature) never may.
    function _maySign(Stored storage channel, address consumer, address signer) private view returns (bool) {
        if (signer == address(0)) return false;
        if (signer == channel.signer || signer == consumer) return true;
        return signer == channel.oldSigner && block.timestamp < channel.oldSignerUntil;
    }

    /// @dev A permit that fails is fine when the allowance is there anyway (someone front-ran the
    /// same permit); otherwise the token's own error (expired, wrong signer) is raised.
    function _permit(uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s) private {
        try token.permit(msg.sender, address(this), value, deadline, v, r, s) {}
        catch (bytes memory reason) {
            if (IERC20(address(token)).allowance(msg.sender, address(this)) < value) {
                assembly ("memory-safe") {
                    revert(add(reason, 32), mload(reason))
                }
            }
        }
    }

    /// @dev The address that signed `digest` (r ‖ s ‖ v, read straight from calldata), or zero
    /// when the signature is malformed or malleable.
    function _signerOf(bytes32 digest, bytes calldata signature) private pure returns (address signer) {
        if (signature.length != 65) return address(0);
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            r := calldataload(signature.offset)
            s := calldataload(add(signature.offset, 0x20))
            v := byte(0, calldataload(add(signature.offset, 0x40)))
        }
        // slither-disable-next-line unused-return (the third value only details the error checked here)
        (address recovered, ECDSA.RecoverError error,) = ECDSA.tryRecover(digest, v, r, s);
        if (error == ECDSA.RecoverError.NoError) signer = recovered;
    }
}
