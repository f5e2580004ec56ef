"""Contracts: the execution context every transaction handler sees, the system contracts
(tokens, certificates, the contract lifecycle), the WebAssembly sandbox for user contracts
and the parallel executor. Knows nothing of consensus or the network; ``ledger.node.app``
drives it block by block."""
