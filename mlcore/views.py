"""HTML pages of a tenant's workspace."""

from django.shortcuts import render

from tenants.pages import member_page


@member_page()
def home(request):
    return render(request, "mlcore/home.html", {})
