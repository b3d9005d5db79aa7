"""The dashboard's Stores page: each connected store's last notification and last refused request."""

import re

from support.app_store import renewal, transaction
from support.dashboard import EMAIL, PASSWORD, sign_in

from subledger.dashboard import service as dashboard_service


def cell(html: str, name: str) -> str:
    return re.sub(r"\s+", " ", re.search(rf'<td class="{name}">(.*?)</td>', html, re.S).group(1)).strip()


def test_a_store_shows_its_last_notification_and_its_last_refused_request(store, client, runtime):
    dashboard_service.create_operator(runtime, EMAIL, PASSWORD)
    sign_in(client)
    page = client.get(f"/dashboard/apps/{store.api.app_id}/stores/").text
    assert (cell(page, "last-notification"), cell(page, "last-refused")) == ("none yet", "none")

    assert store.notify("SUBSCRIBED/INITIAL_BUY", transaction(appAccountToken="u1"), renewal()) == "applied"
    forged = client.post(store.url, json={"signedPayload": "not.a.jws"})
    assert forged.status_code == 400
    page = client.get(f"/dashboard/apps/{store.api.app_id}/stores/").text
    assert cell(page, "last-notification").endswith("· SUBSCRIBED/INITIAL_BUY · applied")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d · .+", cell(page, "last-refused"))
