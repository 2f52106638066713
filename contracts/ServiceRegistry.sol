// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title ServiceRegistry: where providers publish the services they sell.
/// @notice A provider is a namespace held by its owner address (first come; the owner may hand it
/// on). Only the owner registers, updates or disables services under it, each addressed as
/// `provider/service` and naming the agent address that is paid for it (the owner's own key, or
/// its agent's). A consumer resolves `provider/service` to exactly one entry: a name can no
/// longer be squatted by whoever registers it first under their own address.
contract ServiceRegistry {
    /// @notice A service as getService returns it.
    struct Service {
        address agent;
        string provider;
        string name;
        string endpoint;
        uint256 price;
        bytes32 specHash;
        bool enabled;
    }

    /// @dev What is stored of a service: its keys (provider, name) are not stored twice, and the
    /// agent and the enabled flag share one slot.
    struct Entry {
        address agent;
        bool enabled;
        uint256 price;
        bytes32 specHash;
        string endpoint;
    }

    /// @notice Longest provider or service name, in bytes.
    uint256 public constant MAX_NAME_LENGTH = 64;
    /// @notice Most service names servicesOf returns per call (listings are paged).
    uint256 public constant MAX_PAGE = 100;

    mapping(string => address) private _owners;
    /// @dev provider => name => entry; a service exists once its agent field is set.
    mapping(string => mapping(string => Entry)) private _services;
    mapping(string => string[]) private _namesOf;

    event ProviderCreated(string provider, address indexed owner);
    event ProviderTransferred(string provider, address indexed previousOwner, address indexed newOwner);
    event ServiceRegistered(string provider, string name, address indexed agent, string endpoint, uint256 price, bytes32 specHash);
    event ServiceUpdated(string provider, string name, address indexed agent, string endpoint, uint256 price, bytes32 specHash);
    event ServiceDisabled(string provider, string name);

    /// @notice A provider or service name is empty, longer than MAX_NAME_LENGTH, or has a
    /// character outside a-z 0-9 . _ - (one spelling per name: no look-alikes, no `/`).
    error InvalidName(string name);
    /// @notice The endpoint URL is empty.
    error EmptyEndpoint();
    /// @notice The agent or new owner is the zero address.
    error ZeroAddress();
    /// @notice The provider name already belongs to `owner`.
    error ProviderTaken(string provider, address owner);
    /// @notice No provider of that name: create it first.
    error ProviderNotFound(string provider);
    /// @notice Only the provider's owner may do this.
    error NotProviderOwner(string provider, address owner, address caller);
    /// @notice The provider already has an enabled service of that name: use update().
    error ServiceAlreadyRegistered(string provider, string name);
    /// @notice The provider has no service of that name: register() it first.
    error ServiceNotRegistered(string provider, string name);
    /// @notice The service is disabled: register() it again to enable it.
    error ServiceNotEnabled(string provider, string name);

    modifier onlyOwnerOf(string calldata provider) {
        address owner = _owners[provider];
        if (owner == address(0)) revert ProviderNotFound(provider);
        if (owner != msg.sender) revert NotProviderOwner(provider, owner, msg.sender);
        _;
    }

    /// @notice Creates provider `provider`, owned by the caller; first come, first served.
    function createProvider(string calldata provider) external {
        _checkName(provider);
        address owner = _owners[provider];
        if (owner != address(0)) revert ProviderTaken(provider, owner);
        _owners[provider] = msg.sender;
        emit ProviderCreated(provider, msg.sender);
    }

    /// @notice Hands provider `provider` (and the right to change its services) to `newOwner`.
    function transferProvider(string calldata provider, address newOwner) external onlyOwnerOf(provider) {
        if (newOwner == address(0)) revert ZeroAddress();
        _owners[provider] = newOwner;
        emit ProviderTransferred(provider, msg.sender, newOwner);
    }

    /// @notice Registers service `name` of the caller's provider, paid to `agent`, or enables
    /// again one it had disabled.
    function register(
        string calldata provider,
        string calldata name,
        address agent,
        string calldata endpoint,
        uint256 price,
        bytes32 specHash
    ) external onlyOwnerOf(provider) {
        _checkName(name);
        Entry storage entry = _services[provider][name];
        if (entry.enabled) revert ServiceAlreadyRegistered(provider, name);
        if (entry.agent == address(0)) _namesOf[provider].push(name);
        _write(entry, agent, endpoint, price, specHash);
        emit ServiceRegistered(provider, name, agent, endpoint, price, specHash);
    }

    /// @notice Changes the agent, endpoint, price and spec hash of an enabled service.
    function update(
        string calldata provider,
        string calldata name,
        address agent,
        string calldata endpoint,
        uint256 price,
        bytes32 specHash
    ) external onlyOwnerOf(provider) {
        _write(_enabledService(provider, name), agent, endpoint, price, specHash);
        emit ServiceUpdated(provider, name, agent, endpoint, price, specHash);
    }

    /// @notice Disables a service; it stays listed, with `enabled` false.
    function disable(string calldata provider, string calldata name) external onlyOwnerOf(provider) {
        _enabledService(provider, name).enabled = false;
        emit ServiceDisabled(provider, name);
    }

    /// @notice The owner of `provider` (the zero address when nobody created it).
    function ownerOf(string calldata provider) external view returns (address) {
        return _owners[provider];
    }

    /// @notice Service `provider/name`; reverts ServiceNotRegistered when there is none.
    function getService(string calldata provider, string calldata name) external view returns (Service memory) {
        Entry storage entry = _services[provider][name];
        if (entry.agent == address(0)) revert ServiceNotRegistered(provider, name);
        return Service(entry.agent, provider, name, entry.endpoint, entry.price, entry.specHash, entry.enabled);
    }

    /// @notice How many service names `provider` ever registered (enabled or not).
    function serviceCount(string calldata provider) external view returns (uint256) {
        return _namesOf[provider].length;
    }

    /// @notice Up to `limit` (at most MAX_PAGE) of the service names of `provider`, from `offset`,
    /// in registration order: one call stays bounded however many the provider has.
    function servicesOf(string calldata provider, uint256 offset, uint256 limit) external view returns (string[] memory page) {
        string[] storage names = _namesOf[provider];
        uint256 end = offset + (limit < MAX_PAGE ? limit : MAX_PAGE);
        if (end > names.length) end = names.length;
        if (offset >= end) return new string[](0);
        page = new string[](end - offset);
        for (uint256 i = offset; i < end; ++i) page[i - offset] = names[i];
    }

    function _enabledService(string calldata provider, string calldata name) private view returns (Entry storage entry) {
        entry = _services[provider][name];
        if (entry.agent == address(0)) revert ServiceNotRegistered(provider, name);
        if (!entry.enabled) revert ServiceNotEnabled(provider, name);
    }

    function _write(Entry storage entry, address agent, string calldata endpoint, uint256 price, bytes32 specHash) private {
        if (agent == address(0)) revert ZeroAddress();
        if (bytes(endpoint).length == 0) revert EmptyEndpoint();
        entry.agent = agent;
        entry.enabled = true;
        entry.endpoint = endpoint;
        entry.price = price;
        entry.specHash = specHash;
    }

    function _checkName(string calldata name) private pure {
        bytes calldata raw = bytes(name);
        if (raw.length == 0 || raw.length > MAX_NAME_LENGTH) revert InvalidName(name);
        for (uint256 i; i < raw.length; ++i) {
            bytes1 c = raw[i];
            if (!((c >= "a" && c <= "z") || (c >= "0" && c <= "9") || c == "." || c == "_" || c == "-")) {
                revert InvalidName(name);
            }
        }
    }
}
