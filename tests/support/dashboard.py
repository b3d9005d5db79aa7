"""An operator signed in to the dashboard."""

import re

EMAIL = "ops@example.com"


PASSWORD = "correct horse battery"


def login_csrf(client) -> str:
    page = client.get("/dashboard/login")
    assert page.status_code == 200
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def sign_in(client, email=EMAIL, password=PASSWORD, next_page="/dashboard/"):
    csrf = login_csrf(client)
    return client.post(
        "/dashboard/login",
        data={"email": email, "password": password, "csrf": csrf, "next": next_page},
        follow_redirects=False,
    )
