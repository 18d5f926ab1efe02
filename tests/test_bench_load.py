"""bench/load.py's pure helpers: the percentiles it prints and the cross-tenant checker it counts with
(the bench itself starts servers and is not part of the suite)."""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parent.parent / "bench" / "load.py"
_spec = importlib.util.spec_from_file_location("bench_load", _PATH)
load = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("bench_load", load)  # dataclasses look their module up there
_spec.loader.exec_module(load)


@pytest.mark.parametrize("size", [1, 2, 7, 100, 1001])
def test_percentile_matches_numpy(size):
    values = list(np.random.default_rng(size).exponential(50, size))
    for q in (0, 50, 95, 99, 100):
        assert load.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_of_nothing_is_nan_and_order_does_not_matter():
    assert math.isnan(load.percentile([], 50))
    assert load.percentile([30.0, 10.0, 20.0], 50) == 20.0


def test_foreign_markers_finds_other_tenants_only_as_whole_tokens():
    alice_tenant = 3
    body = ('{"name": "tn03z-u1-r2", "owner": "user0@tn03z.test", "tag": "tn07z-a", '
            '"x": "atn05z", "y": "tn05zb", "z": "tn005z", "w": "tn11z"}')
    # tn07z and tn11z are other tenants' markers; atn05z, tn05zb and tn005z are not markers at all
    assert load.foreign_markers(body, alice_tenant) == ["tn07z", "tn11z"]
    assert load.foreign_markers('{"owner": "user0@tn03z.test"}', alice_tenant) == []


def test_ledger_counts_foreign_markers_and_ids_never_created():
    ledger = load.Ledger(tenants=2)
    ledger.add(0, "dataset", 1)
    assert ledger.check(0, "GET /api/v1/datasets/", '{"name": "tn00z-a"}', {"dataset": [1]})
    assert not ledger.check(0, "GET /api/v1/datasets/", '{"name": "tn01z-a"}')
    # id 2 is not known yet: deferred, and fine once its creator's answer registers it
    ledger.check(0, "GET /api/v1/datasets/", "", {"dataset": [2, 3]})
    ledger.add(0, "dataset", 2)
    # tenant 1 created dataset 3, not tenant 0: ids repeat across tenants, but the ledger is per tenant
    ledger.add(1, "dataset", 3)
    assert ledger.settle() == 2
    assert "saw tn01z" in ledger.violations[0]
    assert "dataset id 3 it never created" in ledger.violations[1]


def test_ledger_counts_responses_not_findings():
    ledger = load.Ledger(tenants=3)
    response = ledger.new_response()
    # one body with two other tenants' markers and two ids tenant 0 never created
    ledger.check(0, "GET /api/v1/models/", '["tn01z-model", "tn02z-model"]', {"model": [7], "version": [9]},
                 response=response)
    assert ledger.settle() == 1
    assert len(ledger.violations) == 3


def test_ledger_flags_usage_showing_more_datasets_than_the_tenant_created():
    ledger = load.Ledger(tenants=2)
    for dataset_id in (1, 2):
        ledger.add(0, "dataset", dataset_id)
    ledger.saw_usage(0, 2, ledger.new_response())
    assert ledger.settle() == 0
    ledger.saw_usage(1, 1, ledger.new_response())  # tenant 1 created none
    assert ledger.settle() == 1


def test_endpoint_rows_per_endpoint_and_total():
    stats = load.Stats()
    stats.latencies["GET /api/v1/usage/"] = [10.0, 20.0, 30.0]
    stats.latencies["POST /api/v1/datasets/"] = [100.0]
    stats.errors["POST /api/v1/datasets/"] = 1
    stats.throttled["GET /api/v1/usage/"] = 2
    rows = load.endpoint_rows(stats, seconds=2.0)
    assert rows[0] == ("POST /api/v1/datasets/", 1, "0.5", "100.0", "100.0", "100.0", 1, 0)
    assert rows[1][:4] == ("GET /api/v1/usage/", 3, "1.5", "20.0")
    assert rows[1][6:] == (0, 2)
    assert rows[-1][:3] == ("total", 4, "2.0")
    assert rows[-1][6:] == (1, 2)


def test_dataset_csv_is_small_distinct_and_carries_the_tenant_marker_in_labels():
    first, second = load.dataset_csv(4, seed=1), load.dataset_csv(4, seed=2)
    assert first != second and len(first) < 8_000
    lines = first.decode().splitlines()
    assert lines[0] == "x1,x2,x3,tag,label" and len(lines) == 101
    assert {line.rsplit(",", 1)[1] for line in lines[1:]} == {"tn04z-yes", "tn04z-no"}
    assert load.foreign_markers(first.decode(), 4) == []
