from django.conf import settings

from tenants.accounts.hosts import public_url, tenant_url
from tenants.selectors import workspaces_for_user


def workspace(request):
    tenant = getattr(request, "tenant", None)
    membership = getattr(request, "membership", None)
    context = {"base_domain": settings.PORTAL_BASE_DOMAIN, "public_site_url": public_url("/")}
    if tenant is None or tenant.is_public:
        return context
    context.update(tenant=tenant, membership=membership, role=membership.role if membership else None)
    # A DRF view without authentication (the API docs) leaves an anonymous user beside a membership.
    if membership is not None and request.user.is_authenticated:
        context["workspaces"] = [
            {"name": m.tenant.name, "slug": m.tenant.slug, "role": m.role,
             "url": tenant_url(m.tenant, "/"), "current": m.tenant_id == tenant.id}
            for m in workspaces_for_user(user=request.user)
        ]
    return context
