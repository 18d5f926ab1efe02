"""The result's shape: JSON with the API's keys, the preview (mlcore/ingest/results.py).

Pure tests through mlcore.ingest.ingest: no database, no Django.
"""

from __future__ import annotations

import json

from tests.mlcore.ingest.conftest import run


def test_the_result_is_json_serialisable_with_the_api_keys():
    result = run(b"id,plan,at\n1,free,2024-01-01\n2,team,2024-01-02\n3,free,2024-01-03\n")

    data = json.loads(json.dumps(result.to_dict()))

    assert data["rows"] == 3
    assert data["preview"] == {"columns": ["id", "plan", "at"],
                               "rows": [["1", "free", "2024-01-01"], ["2", "team", "2024-01-02"],
                                        ["3", "free", "2024-01-03"]]}
    plan = data["columns"][1]
    assert {"name", "type", "missing", "distinct", "top", "histogram"} <= plan.keys()
    assert plan["top"][0] == {"value": "free", "count": 2}


def test_the_preview_has_the_first_rows_only():
    data = b"i\n" + b"".join(b"%d\n" % i for i in range(100))

    result = run(data, preview_rows=5, block_size=64)

    assert result.preview == [["0"], ["1"], ["2"], ["3"], ["4"]]
