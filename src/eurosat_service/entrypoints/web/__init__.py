"""The HTTP edge of the inference engine: routers per resource, middleware, error mapping."""
