"""The dashboard's API keys page: the keys that work, and rotation with a grace."""

import re
from datetime import timedelta

from support.api import BASE
from support.dashboard import EMAIL, PASSWORD, sign_in

from subledger.dashboard import service as dashboard_service


def rotate(client, app_id: str, kind: str, grace_hours: int):
    page = client.get(f"/dashboard/apps/{app_id}/keys/")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    form = {"kind": kind, "grace_hours": str(grace_hours), "csrf": csrf}
    return client.post(f"/dashboard/apps/{app_id}/keys/rotate", data=form)


def works(api, secret: str) -> int:
    return api.client.get(f"{BASE}/profile/", headers={"Authorization": f"Api-Key {secret}"}).status_code


def test_a_secret_key_rotated_at_once_is_shown_once_and_the_old_one_stops(api, client, runtime):
    dashboard_service.create_operator(runtime, EMAIL, PASSWORD)
    sign_in(client)
    page = client.get(f"/dashboard/apps/{api.app_id}/keys/").text
    assert f"<code>{api.secret[:12]}" in page and api.secret not in page
    assert f"<code>{api.public[:12]}" in page

    runtime.settings.api_key_cache_seconds = 0  # the server asks the database at every request
    answer = rotate(client, api.app_id, "secret", 0)
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    new_key = re.search(r'<code class="key">([^<]+)</code>', answer.text).group(1)
    assert new_key.startswith("secret_live_") and new_key != api.secret
    assert works(api, api.secret) == 401 and works(api, new_key) == 400  # known key; no profile named
    assert new_key not in client.get(f"/dashboard/apps/{api.app_id}/keys/").text


def test_a_public_key_rotated_with_a_grace_keeps_the_old_one_a_day(api, client, runtime, clock):
    dashboard_service.create_operator(runtime, EMAIL, PASSWORD)
    sign_in(client)
    answer = rotate(client, api.app_id, "public", 24)
    until = (clock.now() + timedelta(hours=24)).strftime("%Y-%m-%d %H:%M")
    assert f"The earlier public keys work until {until} UTC." in answer.text
    rows = re.findall(r"<tr><td>public</td><td><code>([^<]+)</code></td><td>[^<]+</td><td>([^<]+)</td>", answer.text)
    assert sorted(works_until for _, works_until in rows) == [until, "until rotated"]
