"""Adapters: one file per outside thing (PyTorch, the file system, S3, ECR, ECS, CloudWatch)."""
