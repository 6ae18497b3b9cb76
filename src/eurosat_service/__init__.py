"""eurosat-service: train, serve, containerize and deploy a EuroSAT land-cover classifier."""

__version__ = "0.1.0"
