"""What the admin pages show after an import: the partner with its imported code, tag and
earnings, and the imported history among its conversions."""
from __future__ import annotations

from tests.core.importers.helpers import import_ok, partners_by_email
from tests.core.web.test_admin import login, make_user
from tests.factories import new_program


def test_admin_partner_page_shows_imported_history(app, runner):
    api = new_program(app)
    for name in ("partners.csv", "customers.csv", "commissions.csv"):
        import_ok(runner, "tolt", name)
    michael = partners_by_email(api)["michael.scott@dundermifflin.example"]
    client = app.test_client()
    login(client, make_user(app, api.program_id))
    html = client.get(f"/admin/partners/{michael['id']}?period=all").get_data(as_text=True)
    assert "Michael Scott" in html and "DUNDER15" in html and "Resellers" in html
    assert "29.40" in html  # paid
    assert "tolt" in html.lower()
    listing = client.get("/admin/partners").get_data(as_text=True)
    assert "Ødegaard Bjørn" in listing and "Acme Ltd" in listing
