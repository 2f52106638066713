// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

/// @title JobEscrow: one contract holds the payment of every job.
/// @notice A consumer opens a job for an agent at a price and an expiry and funds it (tokens move
/// into escrow). The agent, having served the call, completes the job with the consumer's EIP-712
/// `Invocation(jobId, agent, requestHash)` signature and is paid. A job never completed is
/// refunded to its consumer once expired.
/// @dev No reentrancy guard: every function checks, then writes its state and emits, and only
/// then calls the token (checks-effects-interactions), so a re-entered call sees the new state.
/// The EIP-712 domain ("facemarket JobEscrow", "1", chain id, this address) is published by
/// eip712Domain() (ERC-5267).
contract JobEscrow is EIP712 {
    using SafeERC20 for IERC20;

    enum JobState {
        NONE,
        CREATED,
        FUNDED,
        COMPLETED,
        REFUNDED
    }

    struct Job {
        address consumer;
        address agent;
        uint256 price;
        uint64 expiresAt;
        JobState state;
    }

    bytes32 public constant INVOCATION_TYPEHASH = keccak256("Invocation(uint256 jobId,address agent,bytes32 requestHash)");

    IERC20Permit public immutable token;

    /// @dev Storage, laid out for gas (a paid job must cost under 100,000 gas in total):
    /// - one slot per job: consumer (160 bits) | expiresAt (40) | state (8) | tariffId (48);
    /// - a "tariff", the (agent, price) pair, is stored once and shared by every job at that price
    ///   for that agent, so opening a job writes one new slot instead of two;
    /// - completion sets a bit in a bitmap (256 jobs per slot) instead of rewriting the job's
    ///   slot: a batch of claims then writes one warm slot per 256 jobs. A job whose slot says
    ///   FUNDED and whose bit is set is COMPLETED (_state reads both).
    mapping(uint256 => uint256) private _jobs;
    mapping(uint256 => uint256) private _completedBits;
    /// @dev tariff id => agent << 96 | price, and back.
    mapping(uint256 => uint256) private _tariffs;
    mapping(uint256 => uint256) private _tariffIds;
    uint64 private _nextJobId;
    uint48 private _tariffCount;

    uint256 private constant _EXPIRES_SHIFT = 160;
    uint256 private constant _STATE_SHIFT = 200;
    uint256 private constant _TARIFF_SHIFT = 208;

    event JobCreated(uint256 indexed jobId, address indexed consumer, address indexed agent, uint256 price, uint64 expiresAt);
    event JobFunded(uint256 indexed jobId, address indexed consumer, address indexed agent, uint256 price, uint64 expiresAt);
    event JobCompleted(uint256 indexed jobId, address indexed agent, bytes32 requestHash);
    event JobRefunded(uint256 indexed jobId, address indexed consumer, address indexed agent);
    /// @notice A batch entry that failed a check; `reason` is the selector of the error completeJob would raise.
    event JobCompletionSkipped(uint256 indexed jobId, address indexed agent, bytes4 reason);

    /// @notice A job needs an agent.
    error ZeroAgent();
    /// @notice A job needs a price above zero.
    error ZeroPrice();
    /// @notice The price does not fit the 96 bits a job stores.
    error PriceTooLarge(uint256 price, uint256 max);
    /// @notice expiresAt must be later than the current block's timestamp.
    error ExpiryNotInFuture(uint64 expiresAt, uint256 blockTimestamp);
    /// @notice expiresAt must fit 40 bits (a date before the year 36812).
    error ExpiryTooFar(uint64 expiresAt, uint256 max);
    /// @notice A batch needs at least one job.
    error ZeroCount();
    /// @notice No job has this id.
    error UnknownJob(uint256 jobId);
    /// @notice Only the job's consumer may do this.
    error NotJobConsumer(uint256 jobId, address caller, address consumer);
    /// @notice Only the job's agent may complete it.
    error NotJobAgent(uint256 jobId, address caller, address agent);
    /// @notice Only a CREATED job can be funded.
    error JobNotCreated(uint256 jobId, JobState state);
    /// @notice Only a FUNDED job can be completed.
    error JobNotFunded(uint256 jobId, JobState state);
    /// @notice Only a CREATED or FUNDED job can be refunded.
    error JobNotRefundable(uint256 jobId, JobState state);
    /// @notice The job expired at `expiresAt`: it can no longer be funded or completed.
    error JobExpired(uint256 jobId, uint64 expiresAt);
    /// @notice The job expires at `expiresAt`: it cannot be refunded before.
    error JobNotExpired(uint256 jobId, uint64 expiresAt);
    /// @notice The Invocation signature recovers to `signer`, not to the job's consumer.
    error InvalidInvocationSignature(uint256 jobId, address signer, address consumer);
    /// @notice completeJobs needs one request hash and one signature per job id.
    error LengthMismatch(uint256 jobIds, uint256 requestHashes, uint256 signatures);

    constructor(IERC20Permit token_) EIP712("facemarket JobEscrow", "1") {
        token = token_;
        _nextJobId = 1;
    }

    // ---------------------------------------------------------------- open and fund

    /// @notice Opens a job (CREATED); fundJob moves the tokens later.
    function createJob(address agent, uint256 price, uint64 expiresAt) external returns (uint256 jobId) {
        return _open(agent, price, expiresAt, 1, JobState.CREATED);
    }

    /// @notice Funds a CREATED job of the caller: `price` tokens move into escrow (approve first).
    function fundJob(uint256 jobId) external {
        uint256 job = _jobs[jobId];
        JobState state = _state(jobId, job);
        if (state == JobState.NONE) revert UnknownJob(jobId);
        address consumer = _consumer(job);
        if (msg.sender != consumer) revert NotJobConsumer(jobId, msg.sender, consumer);
        if (state != JobState.CREATED) revert JobNotCreated(jobId, state);
        uint64 expiresAt = _expiresAt(job);
        if (block.timestamp >= expiresAt) revert JobExpired(jobId, expiresAt);
        _jobs[jobId] = _withState(job, JobState.FUNDED);
        (address agent, uint256 price) = _tariff(job);
        emit JobFunded(jobId, consumer, agent, price, expiresAt);
        IERC20(address(token)).safeTransferFrom(consumer, address(this), price);
    }

    /// @notice Opens and funds a job in one call (approve first).
    function createAndFundJob(address agent, uint256 price, uint64 expiresAt) external returns (uint256 jobId) {
        jobId = _open(agent, price, expiresAt, 1, JobState.FUNDED);
        IERC20(address(token)).safeTransferFrom(msg.sender, address(this), price);
    }

    /// @notice Opens and funds a job in one transaction, with an EIP-2612 permit instead of an approve.
    function createAndFundJobWithPermit(
        address agent,
        uint256 price,
        uint64 expiresAt,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint256 jobId) {
        jobId = _open(agent, price, expiresAt, 1, JobState.FUNDED);
        _permit(price, deadline, v, r, s);
        IERC20(address(token)).safeTransferFrom(msg.sender, address(this), price);
    }

    /// @notice Prepays `count` calls: jobs firstId .. firstId+count-1, all FUNDED, one transfer (approve first).
    function createAndFundJobs(address agent, uint256 price, uint64 expiresAt, uint256 count)
        external
        returns (uint256 firstId)
    {
        firstId = _open(agent, price, expiresAt, count, JobState.FUNDED);
        IERC20(address(token)).safeTransferFrom(msg.sender, address(this), price * count);
    }

    /// @notice createAndFundJobs with an EIP-2612 permit for price * count instead of an approve.
    function createAndFundJobsWithPermit(
        address agent,
        uint256 price,
        uint64 expiresAt,
        uint256 count,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint256 firstId) {
        firstId = _open(agent, price, expiresAt, count, JobState.FUNDED);
        uint256 total = price * count;
        _permit(total, deadline, v, r, s);
        IERC20(address(token)).safeTransferFrom(msg.sender, address(this), total);
    }

    // ---------------------------------------------------------------- complete

    /// @notice The job's agent claims a FUNDED, unexpired job with the consumer's Invocation signature.
    function completeJob(uint256 jobId, bytes32 requestHash, bytes calldata signature) external {
        (bytes memory failure, uint256 price) = _complete(jobId, requestHash, signature);
        if (failure.length != 0) {
            assembly ("memory-safe") {
                revert(add(failure, 32), mload(failure))
            }
        }
        IERC20(address(token)).safeTransfer(msg.sender, price);
    }

    /// @notice Completes a batch; entries failing a check are skipped (JobCompletionSkipped), the
    /// agent is paid the sum of the rest in one transfer.
    function completeJobs(uint256[] calldata jobIds, bytes32[] calldata requestHashes, bytes[] calldata signatures)
        external
    {
        uint256 n = jobIds.length;
        if (requestHashes.length != n || signatures.length != n) {
            revert LengthMismatch(n, requestHashes.length, signatures.length);
        }
        uint256 total;
        for (uint256 i; i < n;) {
            (bytes memory failure, uint256 price) = _complete(jobIds[i], requestHashes[i], signatures[i]);
            if (failure.length != 0) {
                emit JobCompletionSkipped(jobIds[i], msg.sender, bytes4(failure));
            }
            unchecked {
                total += price; // each price < 2**96, far from overflowing
                ++i;
            }
        }
        if (total != 0) IERC20(address(token)).safeTransfer(msg.sender, total);
    }

    // ---------------------------------------------------------------- refund

    /// @notice The consumer takes back an expired job that was never completed.
    function refund(uint256 jobId) external {
        uint256 job = _jobs[jobId];
        JobState state = _state(jobId, job);
        if (state == JobState.NONE) revert UnknownJob(jobId);
        address consumer = _consumer(job);
        if (msg.sender != consumer) revert NotJobConsumer(jobId, msg.sender, consumer);
        if (state != JobState.CREATED && state != JobState.FUNDED) revert JobNotRefundable(jobId, state);
        uint64 expiresAt = _expiresAt(job);
        if (block.timestamp < expiresAt) revert JobNotExpired(jobId, expiresAt);
        _jobs[jobId] = _withState(job, JobState.REFUNDED);
        (address agent, uint256 price) = _tariff(job);
        emit JobRefunded(jobId, consumer, agent);
        if (state == JobState.FUNDED) IERC20(address(token)).safeTransfer(consumer, price);
    }

    // ---------------------------------------------------------------- views

    /// @notice The job `jobId`; state NONE when there is none.
    function getJob(uint256 jobId) external view returns (Job memory) {
        uint256 job = _jobs[jobId];
        (address agent, uint256 price) = _tariff(job);
        return Job(_consumer(job), agent, price, _expiresAt(job), _state(jobId, job));
    }

    /// @notice The id the next job will get.
    function nextJobId() external view returns (uint256) {
        return _nextJobId;
    }

    /// @notice The EIP-712 digest the consumer signs for `jobId`, `agent`, `requestHash`.
    function invocationDigest(uint256 jobId, address agent, bytes32 requestHash) public view returns (bytes32) {
        bytes32 typehash = INVOCATION_TYPEHASH;
        bytes32 structHash;
        assembly ("memory-safe") {
            // keccak256(abi.encode(typehash, jobId, agent, requestHash)), in scratch memory
            let m := mload(0x40)
            mstore(m, typehash)
            mstore(add(m, 0x20), jobId)
            mstore(add(m, 0x40), agent)
            mstore(add(m, 0x60), requestHash)
            structHash := keccak256(m, 0x80)
        }
        return _hashTypedDataV4(structHash);
    }

    // ---------------------------------------------------------------- internals: jobs

    function _open(address agent, uint256 price, uint64 expiresAt, uint256 count, JobState state)
        private
        returns (uint256 firstId)
    {
        if (agent == address(0)) revert ZeroAgent();
        if (price == 0) revert ZeroPrice();
        if (price > type(uint96).max) revert PriceTooLarge(price, type(uint96).max);
        if (expiresAt <= block.timestamp) revert ExpiryNotInFuture(expiresAt, block.timestamp);
        if (expiresAt > type(uint40).max) revert ExpiryTooFar(expiresAt, type(uint40).max);
        if (count == 0) revert ZeroCount();
        uint256 job = uint256(uint160(msg.sender)) | uint256(expiresAt) << _EXPIRES_SHIFT
            | uint256(state) << _STATE_SHIFT | uint256(_tariffIdOf(agent, price)) << _TARIFF_SHIFT;
        firstId = _nextJobId;
        uint256 end = firstId + count;
        _nextJobId = uint64(end); // 2**64 jobs are out of reach: each costs over 20,000 gas
        for (uint256 id = firstId; id < end;) {
            _jobs[id] = job;
            if (state == JobState.FUNDED) emit JobFunded(id, msg.sender, agent, price, expiresAt);
            else emit JobCreated(id, msg.sender, agent, price, expiresAt);
            unchecked {
                ++id;
            }
        }
    }

    function _consumer(uint256 job) private pure returns (address) {
        return address(uint160(job));
    }

    function _expiresAt(uint256 job) private pure returns (uint64) {
        return uint64(uint40(job >> _EXPIRES_SHIFT));
    }

    /// @dev The state in the job's slot, or COMPLETED when the slot says FUNDED and the bit is set.
    function _state(uint256 jobId, uint256 job) private view returns (JobState state) {
        state = JobState(uint8(job >> _STATE_SHIFT));
        if (state == JobState.FUNDED && _completedBits[jobId >> 8] & (1 << (jobId & 0xff)) != 0) {
            state = JobState.COMPLETED;
        }
    }

    function _withState(uint256 job, JobState state) private pure returns (uint256) {
        return job & ~(uint256(0xff) << _STATE_SHIFT) | uint256(state) << _STATE_SHIFT;
    }

    /// @dev The id of the (agent, price) tariff, made on first use.
    function _tariffIdOf(address agent, uint256 price) private returns (uint48 tariffId) {
        uint256 packed = uint256(uint160(agent)) << 96 | price;
        tariffId = uint48(_tariffIds[packed]);
        if (tariffId == 0) {
            tariffId = ++_tariffCount;
            _tariffIds[packed] = tariffId;
            _tariffs[tariffId] = packed;
        }
    }

    /// @dev The agent and price of the job's tariff (zero for no job).
    function _tariff(uint256 job) private view returns (address agent, uint256 price) {
        uint256 packed = _tariffs[job >> _TARIFF_SHIFT];
        return (address(uint160(packed >> 96)), uint96(packed));
    }

    // ---------------------------------------------------------------- internals: token and signatures

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

    /// @dev Checks one completion and, when it passes, marks the job COMPLETED and returns its
    /// price; otherwise returns the encoded error (and changes nothing). The caller pays.
    function _complete(uint256 jobId, bytes32 requestHash, bytes calldata signature)
        private
        returns (bytes memory failure, uint256 price)
    {
        uint256 job = _jobs[jobId];
        JobState state = _state(jobId, job);
        if (state != JobState.FUNDED) {
            if (state == JobState.NONE) return (abi.encodeWithSelector(UnknownJob.selector, jobId), 0);
            return (abi.encodeWithSelector(JobNotFunded.selector, jobId, state), 0);
        }
        address agent;
        (agent, price) = _tariff(job);
        if (msg.sender != agent) return (abi.encodeWithSelector(NotJobAgent.selector, jobId, msg.sender, agent), 0);
        uint64 expiresAt = _expiresAt(job);
        if (block.timestamp >= expiresAt) return (abi.encodeWithSelector(JobExpired.selector, jobId, expiresAt), 0);
        address consumer = _consumer(job);
        address signer = _signerOf(invocationDigest(jobId, agent, requestHash), signature);
        if (signer != consumer) {
            return (abi.encodeWithSelector(InvalidInvocationSignature.selector, jobId, signer, consumer), 0);
        }
        _completedBits[jobId >> 8] |= 1 << (jobId & 0xff);
        emit JobCompleted(jobId, agent, requestHash);
        return ("", price);
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
        (signer,,) = ECDSA.tryRecover(digest, v, r, s);
    }
}
