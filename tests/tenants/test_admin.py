"""The operator console (tenants/admin.py, portal/urls_public.py): Django's admin on the public host."""

from html.parser import HTMLParser

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from tenants.models import AuditEvent, Plan, Tenant
from tests import factories

pytestmark = pytest.mark.django_db
MB = 1024 * 1024


class _FormFields(HTMLParser):
    """The values a browser would post from the page's main form (inputs, selects, textareas)."""

    def __init__(self):
        super().__init__()
        self.data: dict[str, str] = {}
        self._select = None
        self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button", "checkbox"):
            self.data[name] = a.get("value") or ""
        elif tag == "input" and name and a.get("type") == "checkbox" and "checked" in a:
            self.data[name] = a.get("value") or "on"
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select] = a.get("value") or ""
        elif tag == "textarea":
            self._textarea = name
            self.data[name] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data


def form_data(html: str) -> dict[str, str]:
    parser = _FormFields()
    parser.feed(html)
    parser.data.pop("csrfmiddlewaretoken", None)
    return parser.data


@pytest.fixture
def ops(world):
    return factories.bind_session(Client(HTTP_HOST=factories.host(None)), world.ops, None)


def change_url(tenant) -> str:
    return f"/admin/tenants/tenant/{tenant.pk}/change/"


def post_limits(ops, tenant, **limits):
    page = ops.get(change_url(tenant))
    assert page.status_code == 200
    data = form_data(page.content.decode())
    data.update({key: str(value) for key, value in limits.items()})
    return ops.post(change_url(tenant), data)


def test_the_tenant_page_has_one_field_per_limit_in_its_unit_and_no_raw_json(ops, acme):
    html = ops.get(change_url(acme)).content.decode()
    assert 'name="limit_overrides"' not in html
    assert "Storage (MB)" in html
    assert "Memory per job (MB)" in html
    assert "CPU time per month (CPU-seconds)" in html
    assert 'name="cpu_seconds"' in html and 'name="datasets"' in html
    assert "Blank: the plan's 360,000 CPU-seconds." in html


@pytest.mark.parametrize("field,value,message", [
    ("storage_bytes", "lots", "Enter a whole number."),
    ("cpu_seconds", "-5", "Ensure this value is greater than or equal to 0."),
    ("memory_per_job_bytes", "10", "Ensure this value is greater than or equal to 64."),
    ("datasets", str(2**31), "Ensure this value is less than or equal to 2147483647."),
])
def test_a_bad_limit_is_a_form_error_and_changes_nothing(ops, acme, field, value, message):
    response = post_limits(ops, acme, **{field: value})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Tenant.objects.get(pk=acme.pk).limit_overrides == {}


def test_limits_are_saved_in_stored_units_and_blank_inherits_the_plan(
        ops, acme, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_limits(ops, acme, storage_bytes=5, cpu_seconds=7200, datasets="")
    assert response.status_code == 302
    acme.refresh_from_db()
    assert acme.limit_overrides == {"storage_bytes": 5 * MB, "cpu_seconds": 7200}
    entry = AuditEvent.objects.filter(tenant_id=acme.id, action="limits.change").latest("seq")
    assert entry.details["from"]["overrides"] == {}
    assert entry.details["to"]["overrides"] == {"storage_bytes": 5 * MB, "cpu_seconds": 7200}
    # The page shows them back in MB; saving unchanged keeps the exact bytes.
    assert post_limits(ops, acme).status_code == 302
    acme.refresh_from_db()
    assert acme.limit_overrides == {"storage_bytes": 5 * MB, "cpu_seconds": 7200}


def test_an_unchanged_odd_byte_override_survives_a_save(ops, acme):
    acme.limit_overrides = {"storage_bytes": 5 * MB + 3}
    acme.save(update_fields=["limit_overrides"])
    assert post_limits(ops, acme, name="Acme Corporation").status_code == 302
    acme.refresh_from_db()
    assert acme.name == "Acme Corporation"
    assert acme.limit_overrides == {"storage_bytes": 5 * MB + 3}


@pytest.mark.parametrize("overrides,message", [
    ({"storage": 5}, "'storage' is not a limit"),
    ({"storage_bytes": "lots"}, "storage_bytes must be a whole number, not 'lots'."),
    ({"cpu_seconds": 1.5}, "cpu_seconds must be a whole number"),
    ({"cpu_seconds": True}, "cpu_seconds must be a whole number"),
    ({"concurrent_jobs": -1}, "concurrent_jobs must be between 0 and"),
])
def test_the_model_refuses_unknown_keys_and_non_integers_with_a_clear_error(acme, overrides, message):
    acme.limit_overrides = overrides
    with pytest.raises(ValidationError) as caught:
        acme.full_clean()
    assert message in " ".join(caught.value.message_dict["limit_overrides"])


def test_plans_show_storage_and_cpu_time_in_human_units(ops):
    html = ops.get("/admin/tenants/plan/").content.decode()
    assert "20.0 GB" in html and "360,000 CPU-seconds" in html
    assert str(20 * 1024**3) not in html
    team = Plan.objects.get(slug="team")
    page = ops.get(f"/admin/tenants/plan/{team.pk}/change/").content.decode()
    assert "Storage (MB)" in page and 'value="20480"' in page


def test_a_plan_edited_in_mb_is_stored_in_bytes(ops):
    team = Plan.objects.get(slug="team")
    data = form_data(ops.get(f"/admin/tenants/plan/{team.pk}/change/").content.decode())
    data["storage_bytes"] = "30720"
    assert ops.post(f"/admin/tenants/plan/{team.pk}/change/", data).status_code == 302
    team.refresh_from_db()
    assert team.storage_bytes == 30 * 1024**3
    assert team.memory_per_job_bytes == 4 * 1024**3


def test_the_console_hides_the_sign_in_libraries_internals(ops):
    html = ops.get("/admin/").content.decode()
    assert "Tenants" in html and "Plans" in html
    for internal in ("Axes", "Access attempts", "TOTP", "Groups"):
        assert internal not in html
    assert ops.get("/admin/auth/group/").status_code == 404
    assert ops.get("/admin/axes/accessattempt/").status_code == 404


def test_creating_a_tenant_mails_the_first_admins_link_and_never_shows_it(ops, outbox):
    response = ops.post("/admin/tenants/tenant/new/", {
        "slug": "initech", "name": "Initech", "admin_email": "peter@initech.test", "plan": "team"},
        follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "peter@initech.test was e-mailed a one-time link to choose a password." in html
    assert outbox[0].to == ["peter@initech.test"]
    assert "/account/set-password/" in outbox[0].body
    assert "/account/set-password/" not in html


def test_a_bad_value_stored_around_the_services_still_opens_and_is_dropped_on_save(ops, acme):
    Tenant.objects.filter(pk=acme.pk).update(limit_overrides={"storage_bytes": "lots", "datasets": 3})
    assert post_limits(ops, acme).status_code == 302
    acme.refresh_from_db()
    assert acme.limit_overrides == {"datasets": 3}
