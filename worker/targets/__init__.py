"""Deliveries out: one module per target, each turning a verdict into the HTTP request that target wants."""
