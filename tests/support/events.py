"""The event feed and the delivery worker, driven by hand."""

from subledger.worker import DeliveryWorker


def feed(api, **params) -> dict:
    response = api.client.get("/api/admin/v1/events/", params=params, headers=api.headers())
    assert response.status_code == 200, response.text
    return response.json()


def drain(runtime, clock, rounds=200):
    """Run the worker until nothing is due, moving the clock to each retry."""
    worker = DeliveryWorker(runtime, in_flight=4)
    try:
        for _ in range(rounds):
            if worker.run_once() == 0:
                clock.advance(minutes=61)
                if worker.run_once() == 0:
                    return
    finally:
        worker.close()
