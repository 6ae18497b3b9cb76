"""Use cases: plain functions that drive the ports. No framework, no I/O of their own."""
