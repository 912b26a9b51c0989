"""Provider adapters: one module per provider behind the ``ProviderAdapter`` protocol."""
