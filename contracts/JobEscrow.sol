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

    /// @dev Two storage slots per job: (consumer, expiresAt, state) and (agent, price).
    struct StoredJob {
        address consumer;
        uint64 expiresAt;
        JobState state;
        address agent;
        uint96 price;
    }

    bytes32 public constant INVOCATION_TYPEHASH = keccak256("Invocation(uint256 jobId,address agent,bytes32 requestHash)");

    IERC20Permit public immutable token;

    mapping(uint256 => StoredJob) private _jobs;
    uint256 private _nextJobId;

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
        StoredJob storage job = _jobs[jobId];
        JobState state = job.state;
        if (state == JobState.NONE) revert UnknownJob(jobId);
        if (msg.sender != job.consumer) revert NotJobConsumer(jobId, msg.sender, job.consumer);
        if (state != JobState.CREATED) revert JobNotCreated(jobId, state);
        if (block.timestamp >= job.expiresAt) revert JobExpired(jobId, job.expiresAt);
        job.state = JobState.FUNDED;
        uint256 price = job.price;
        emit JobFunded(jobId, msg.sender, job.agent, price, job.expiresAt);
        IERC20(address(token)).safeTransferFrom(msg.sender, address(this), price);
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
        StoredJob storage job = _jobs[jobId];
        JobState state = job.state;
        if (state == JobState.NONE) revert UnknownJob(jobId);
        address consumer = job.consumer;
        if (msg.sender != consumer) revert NotJobConsumer(jobId, msg.sender, consumer);
        if (state != JobState.CREATED && state != JobState.FUNDED) revert JobNotRefundable(jobId, state);
        if (block.timestamp < job.expiresAt) revert JobNotExpired(jobId, job.expiresAt);
        job.state = JobState.REFUNDED;
        emit JobRefunded(jobId, consumer, job.agent);
        if (state == JobState.FUNDED) IERC20(address(token)).safeTransfer(consumer, job.price);
    }

    // ---------------------------------------------------------------- views

    /// @notice The job `jobId`; state NONE when there is none.
    function getJob(uint256 jobId) external view returns (Job memory) {
        StoredJob storage job = _jobs[jobId];
        return Job(job.consumer, job.agent, job.price, job.expiresAt, job.state);
    }

    /// @notice The id the next job will get.
    function nextJobId() external view returns (uint256) {
        return _nextJobId;
    }

    /// @notice The EIP-712 digest the consumer signs for `jobId`, `agent`, `requestHash`.
    function invocationDigest(uint256 jobId, address agent, bytes32 requestHash) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(INVOCATION_TYPEHASH, jobId, agent, requestHash)));
    }

    // ---------------------------------------------------------------- internals

    function _open(address agent, uint256 price, uint64 expiresAt, uint256 count, JobState state)
        private
        returns (uint256 firstId)
    {
        if (agent == address(0)) revert ZeroAgent();
        if (price == 0) revert ZeroPrice();
        if (price > type(uint96).max) revert PriceTooLarge(price, type(uint96).max);
        if (expiresAt <= block.timestamp) revert ExpiryNotInFuture(expiresAt, block.timestamp);
        if (count == 0) revert ZeroCount();
        firstId = _nextJobId;
        uint256 end = firstId + count;
        _nextJobId = end;
        StoredJob memory job = StoredJob(msg.sender, expiresAt, state, agent, uint96(price));
        for (uint256 id = firstId; id < end;) {
            _jobs[id] = job;
            if (state == JobState.FUNDED) emit JobFunded(id, msg.sender, agent, price, expiresAt);
            else emit JobCreated(id, msg.sender, agent, price, expiresAt);
            unchecked {
                ++id;
            }
        }
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

    /// @dev Checks one completion and, when it passes, marks the job COMPLETED and returns its
    /// price; otherwise returns the encoded error (and changes nothing). The caller pays.
    function _complete(uint256 jobId, bytes32 requestHash, bytes calldata signature)
        private
        returns (bytes memory failure, uint256 price)
    {
        StoredJob storage job = _jobs[jobId];
        JobState state = job.state;
        if (state != JobState.FUNDED) {
            if (state == JobState.NONE) return (abi.encodeWithSelector(UnknownJob.selector, jobId), 0);
            return (abi.encodeWithSelector(JobNotFunded.selector, jobId, state), 0);
        }
        address agent = job.agent;
        if (msg.sender != agent) return (abi.encodeWithSelector(NotJobAgent.selector, jobId, msg.sender, agent), 0);
        uint64 expiresAt = job.expiresAt;
        if (block.timestamp >= expiresAt) return (abi.encodeWithSelector(JobExpired.selector, jobId, expiresAt), 0);
        address consumer = job.consumer;
        (address signer,,) = ECDSA.tryRecover(invocationDigest(jobId, agent, requestHash), signature);
        if (signer != consumer) {
            return (abi.encodeWithSelector(InvalidInvocationSignature.selector, jobId, signer, consumer), 0);
        }
        job.state = JobState.COMPLETED;
        emit JobCompleted(jobId, agent, requestHash);
        return ("", job.price);
    }
}
