"""Settings of the demo shop (env prefix ``JOURNEYLENS_DEMO_SHOP_``), built at the entry point."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Service(StrEnum):
    SHOP = "shop"
    PAYMENT = "payment"
    CDN = "cdn"
    SSO = "sso"


class DemoShopSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOURNEYLENS_DEMO_SHOP_", extra="ignore")

    host: str = "127.0.0.1"
    shop_port: int = 8600
    payment_port: int = 8601
    cdn_port: int = 8602
    sso_port: int = 8603
    collector_url: str = Field(
        default="http://127.0.0.1:8400", description="Where pages load rum.js and send beacons."
    )
    site_key: str = "pk_demo_shop_0001"
    secret: SecretStr = Field(
        default=SecretStr("demo-shop-not-a-secret"),
        description="Signs SSO codes and sessions (a demo: not a real secret).",
    )

    def port(self, service: Service) -> int:
        return {
            Service.SHOP: self.shop_port,
            Service.PAYMENT: self.payment_port,
            Service.CDN: self.cdn_port,
            Service.SSO: self.sso_port,
        }[service]

    def url(self, service: Service) -> str:
        return f"http://{self.host}:{self.port(service)}"
