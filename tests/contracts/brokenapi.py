"""A deliberately broken little API for proving the fuzzer can fail: run with uvicorn."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI(title="broken")


class Ratio(BaseModel):
    numerator: int
    denominator: int


@app.post("/ratio")
async def ratio(r: Ratio) -> dict[str, float]:
    # No check for zero: a server error schemathesis must find.
    return {"value": r.numerator / r.denominator}
