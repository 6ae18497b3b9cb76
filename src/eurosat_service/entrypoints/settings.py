"""All configuration, read from ``EUROSAT_*`` environment variables (flags override them)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SHIPPED_MODEL = PROJECT_ROOT / "models" / "eurosat-resnet18"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EUROSAT_", extra="ignore")

    # Model factory
    data_dir: Path = Path("data")
    artifact_uri: str = str(SHIPPED_MODEL)
    checkpoint_dir: Path = Path("runs/checkpoints")
    work_dir: Path = Path("runs/output")

    # Inference engine
    model_uri: str = str(SHIPPED_MODEL)
    model_cache_dir: Path = Path.home() / ".cache" / "eurosat-service"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)

    # AWS (region, profile and endpoint; credentials come from boto3's usual chain)
    aws_region: str = "us-east-1"
    aws_profile: str | None = None
    aws_endpoint_url: str | None = None
