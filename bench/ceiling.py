"""The ceiling: the same server stack (subledger's app, middleware and uvicorn
settings) answering a fixed JSON body of a profile's size, with no database."""

from subledger.app import create_app as create_subledger_app
from subledger.core.http import JSONResponse

FIXED = {
    "data": {
        "app_id": "14c3d623-2f3a-455a-aa86-ef83dff6913b",
        "profile_id": "3286abd3-48b0-4e9c-a5f6-ac0a006804a6",
        "customer_user_id": "bench",
        "total_revenue_usd": 9.99,
        "segment_hash": "8f45947bad31ab0c",
        "timestamp": 1736425645861,
        "custom_attributes": [{"key": "level", "value": 3.0}],
        "access_levels": [],
        "subscriptions": [],
        "non_subscriptions": [],
    }
}


def create_app():
    app = create_subledger_app()

    @app.get("/ceiling")
    async def ceiling():
        return JSONResponse(FIXED)

    return app
