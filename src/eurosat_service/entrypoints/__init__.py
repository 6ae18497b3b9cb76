"""Entrypoints: parse input, call a use case, format output. Wiring lives in ``container``."""
