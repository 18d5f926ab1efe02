"""Demo data for `make run`: a dataset in each demo tenant and a first training job in acme.

Idempotent: does nothing for a tenant that already has its demo dataset.
"""

import numpy as np
from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from mlcore.models import Dataset
from mlcore.services.datasets import dataset_create_from_bytes
from mlcore.services.models import training_job_start
from mlcore.services.sharing import object_share
from tenants.accounts.access import membership_for
from tenants.models import Tenant, User


def churn_csv(rows: int = 2000) -> bytes:
    rng = np.random.default_rng(2026)
    lines = ["customer_id,tenure_months,monthly_fee,plan,autopay,support_calls,signed_up,churned"]
    for i in range(rows):
        tenure = int(rng.integers(1, 72))
        fee = round(float(rng.normal(55, 18)), 2)
        plan = rng.choice(["basic", "plus", "pro"], p=[0.5, 0.3, 0.2])
        autopay = rng.choice(["yes", "no"])
        calls = int(rng.poisson(1.5))
        day = f"20{rng.integers(19, 26)}-{rng.integers(1, 13):02d}-{rng.integers(1, 28):02d}"
        score = -0.04 * tenure + 0.02 * fee + (0.9 if plan == "basic" else 0) + (0.6 if autopay == "no" else 0) + 0.3 * calls
        churned = "yes" if score + rng.normal(0, 0.6) > 1.4 else "no"
        lines.append(f"C{i:05d},{tenure},{fee},{plan},{autopay},{calls},{day},{churned}")
    return ("\n".join(lines) + "\n").encode()


def sales_csv(rows: int = 1500) -> bytes:
    rng = np.random.default_rng(7)
    lines = ["store,region,promo,temperature,weekday,revenue"]
    for i in range(rows):
        region = rng.choice(["north", "south", "east", "west"])
        promo = rng.choice(["true", "false"])
        temp = round(float(rng.normal(18, 7)), 1)
        weekday = int(rng.integers(0, 7))
        revenue = 1200 + (300 if promo == "true" else 0) + 15 * temp + (200 if weekday >= 5 else 0) + rng.normal(0, 120)
        lines.append(f"S{i % 40:03d},{region},{promo},{temp},{weekday},{revenue:.2f}")
    return ("\n".join(lines) + "\n").encode()


DEMO = [
    ("acme", "bob@acme.test", "Customer churn (demo)", "churn.csv", churn_csv,
     {"model_name": "Churn (demo)", "target": "churned", "algorithm": "hist_gradient_boosting",
      "features": ["tenure_months", "monthly_fee", "plan", "autopay", "support_calls", "signed_up"]}),
    ("globex", "charlie@globex.test", "Store sales (demo)", "sales.csv", sales_csv,
     {"model_name": "Revenue (demo)", "target": "revenue", "algorithm": "random_forest",
      "params": {"n_estimators": 100}}),
]


class Command(BaseCommand):
    help = "Create the demo datasets (and queue a first training job) in the demo tenants."

    def handle(self, *args, **options):
        for slug, email, name, filename, make, training in DEMO:
            tenant = Tenant.objects.filter(slug=slug).first()
            user = User.objects.filter(email=email).first()
            if tenant is None or user is None:
                continue
            membership = membership_for(user_id=user.pk, tenant=tenant)
            with tenant_context(tenant):
                if Dataset.objects.filter(name=name).exists():
                    continue
                dataset = dataset_create_from_bytes(tenant=tenant, membership=membership, user=user,
                                                    filename=filename, content=make(), name=name,
                                                    description="Generated demo data to try the platform with.")
                object_share(tenant=tenant, obj=dataset, permission="view", everyone=True)
                spec = {k: v for k, v in training.items() if k != "model_name"}
                training_job_start(tenant=tenant, membership=membership, user=user, dataset=dataset,
                                   model_name=training["model_name"], spec=spec)
            self.stdout.write(f"{slug}: demo dataset '{name}' and a training job")
