"""The workforce service's own settings (prefix ``RECOVERY_WORKFORCE_``): the organisation's
peer-share target and the payer's billing rules, documented in ``docs/workforce.md``."""

from enum import StrEnum

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class UnitRounding(StrEnum):
    """How a day's minutes become 15-minute units."""

    midpoint = "midpoint"  # a unit counts from 8 minutes (CMS "8-minute rule")
    down = "down"  # only whole units
    up = "up"  # any part of a unit counts


class WorkforceOptions(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECOVERY_WORKFORCE_", extra="ignore")

    peer_share_target: float = Field(default=0.5, ge=0, le=1)
    billing_hcpcs: str = "H0038"
    billing_group_modifier: str = "HQ"
    billing_unit_minutes: int = Field(default=15, ge=1, le=60)
    billing_rounding: UnitRounding = UnitRounding.midpoint
    billing_daily_cap_units: int = Field(default=16, ge=1, le=96)
    supervision_window_days: int = Field(default=90, ge=1, le=730)
    climate_window_days: int = Field(default=365, ge=1, le=1460)
