"""The "third-party" payment service: ``POST /v1/charges`` authorises a charge."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from journeylens.demo_shop.common import service_app
from journeylens.demo_shop.faults import FaultRegistry


class ChargeRequest(BaseModel):
    cart_id: str = Field(min_length=1)
    amount: float
    currency: str = Field(default="EUR", min_length=3, max_length=3)


def payment_app(registry: FaultRegistry) -> FastAPI:
    app = service_app("payment", registry)

    @app.post("/v1/charges")
    async def create_charge(charge: ChargeRequest) -> JSONResponse:
        if charge.amount <= 0:
            return JSONResponse(
                {"status": "declined", "error": "amount must be positive"}, status_code=402
            )
        return JSONResponse(
            {
                "id": f"ch_{uuid.uuid4().hex[:16]}",
                "object": "charge",
                "status": "authorized",
                "amount": charge.amount,
                "currency": charge.currency.upper(),
                "cart_id": charge.cart_id,
            }
        )

    return app
