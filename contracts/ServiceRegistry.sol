// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title ServiceRegistry: where agents publish the services they sell.
/// @notice An agent (msg.sender) registers a named service with its endpoint, its price per call
/// in token units and the hash of its API spec; it updates or disables it later. Consumers list
/// the services of an agent, or the agents offering a service name.
contract ServiceRegistry {
    struct Service {
        address agent;
        string name;
        string endpoint;
        uint256 price;
        bytes32 specHash;
        bool enabled;
    }

    /// @dev agent => name => service; a service exists once its agent field is set.
    mapping(address => mapping(string => Service)) private _services;
    mapping(address => string[]) private _namesOf;
    mapping(string => address[]) private _agentsFor;

    event ServiceRegistered(address indexed agent, string name, string endpoint, uint256 price, bytes32 specHash);
    event ServiceUpdated(address indexed agent, string name, string endpoint, uint256 price, bytes32 specHash);
    event ServiceDisabled(address indexed agent, string name);

    /// @notice The service name is empty.
    error EmptyServiceName();
    /// @notice The endpoint URL is empty.
    error EmptyEndpoint();
    /// @notice This agent already has an enabled service of that name: use update().
    error ServiceAlreadyRegistered(address agent, string name);
    /// @notice This agent has no service of that name: register() it first.
    error ServiceNotRegistered(address agent, string name);
    /// @notice The service is disabled: register() it again to enable it.
    error ServiceNotEnabled(address agent, string name);

    /// @notice Registers a service of the caller, or enables again one it had disabled.
    function register(string calldata name, string calldata endpoint, uint256 price, bytes32 specHash) external {
        if (bytes(name).length == 0) revert EmptyServiceName();
        if (bytes(endpoint).length == 0) revert EmptyEndpoint();
        Service storage service = _services[msg.sender][name];
        if (service.enabled) revert ServiceAlreadyRegistered(msg.sender, name);
        if (service.agent == address(0)) {
            service.agent = msg.sender;
            service.name = name;
            _namesOf[msg.sender].push(name);
            _agentsFor[name].push(msg.sender);
        }
        _write(service, endpoint, price, specHash);
        emit ServiceRegistered(msg.sender, name, endpoint, price, specHash);
    }

    /// @notice Changes the endpoint, price and spec hash of an enabled service of the caller.
    function update(string calldata name, string calldata endpoint, uint256 price, bytes32 specHash) external {
        if (bytes(endpoint).length == 0) revert EmptyEndpoint();
        Service storage service = _enabledService(msg.sender, name);
        _write(service, endpoint, price, specHash);
        emit ServiceUpdated(msg.sender, name, endpoint, price, specHash);
    }

    /// @notice Disables a service of the caller; it stays listed, with `enabled` false.
    function disable(string calldata name) external {
        Service storage service = _enabledService(msg.sender, name);
        service.enabled = false;
        emit ServiceDisabled(msg.sender, name);
    }

    /// @notice The service `name` of `agent`; reverts ServiceNotRegistered when there is none.
    function getService(address agent, string calldata name) external view returns (Service memory) {
        Service storage service = _services[agent][name];
        if (service.agent == address(0)) revert ServiceNotRegistered(agent, name);
        return service;
    }

    /// @notice The names of every service `agent` ever registered (enabled or not).
    function servicesOf(address agent) external view returns (string[] memory) {
        return _namesOf[agent];
    }

    /// @notice The agents that ever registered a service called `name` (enabled or not).
    function agentsFor(string calldata name) external view returns (address[] memory) {
        return _agentsFor[name];
    }

    function _enabledService(address agent, string calldata name) private view returns (Service storage service) {
        service = _services[agent][name];
        if (service.agent == address(0)) revert ServiceNotRegistered(agent, name);
        if (!service.enabled) revert ServiceNotEnabled(agent, name);
    }

    function _write(Service storage service, string calldata endpoint, uint256 price, bytes32 specHash) private {
        service.endpoint = endpoint;
        service.price = price;
        service.specHash = specHash;
        service.enabled = true;
    }
}
