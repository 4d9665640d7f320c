"""The What-if page: one entity replayed from event N under another installed
chart version, or under a chart file uploaded from the page
(`engine.whatif.what_if`; nothing is written to the database).

An uploaded file is kept in a temporary directory only while the replay runs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from engine.inspector.backend import Backend
from engine.log_reader import ReplayError
from engine.whatif import WhatIf, WhatIfError, what_if

# A chart file is a few kilobytes; anything far larger is not one.
MAX_CHART_BYTES = 1_000_000


def _choices(backend: Backend, entity: str) -> tuple[str | None, list[int], int | None]:
    """The entity's chart, the versions installed, the one it is on."""
    kind = entity.split(":", 1)[0]
    chart = backend.charts.by_kind.get(kind)
    if chart is None:
        return None, [], None
    versions = sorted(v for (name, v) in backend.charts.versions if name == chart.name)
    return chart.name, versions, chart.spec.version


async def what_if_page(backend: Backend, request: Request) -> dict[str, Any]:
    """The form (prefilled from the query or the posted form) and, once asked, the result."""
    fields: dict[str, Any] = dict(request.query_params)
    upload: UploadFile | None = None
    if request.method == "POST":
        form = await request.form()
        fields.update({k: v for k, v in form.items() if isinstance(v, str)})
        chart_file = form.get("chart_file")
        if isinstance(chart_file, UploadFile) and chart_file.filename:
            upload = chart_file
    entity = str(fields.get("entity", "")).strip()
    chart, versions, newest = _choices(backend, entity) if entity else (None, [], None)
    values: dict[str, Any] = {
        "entity": entity,
        # ``start`` (a timeline row's link) fills the form in without running it.
        "from_seq": fields.get("from_seq") or fields.get("start", ""),
        "version": fields.get("version", ""),
        "chart": chart,
        "versions": versions,
        "newest": newest,
        "result": None,
        "error": None,
    }
    asked = request.method == "POST" or "from_seq" in request.query_params
    if not entity or not asked:
        return values
    try:
        values["result"] = await _run(backend, entity, fields, upload)
    except (WhatIfError, ReplayError) as error:
        values["error"] = str(error)
    return values


async def _run(
    backend: Backend, entity: str, fields: dict[str, Any], upload: UploadFile | None
) -> dict[str, Any]:
    try:
        from_seq = int(str(fields.get("from_seq") or "1"))
        version_text = str(fields.get("version") or "")
        version = int(version_text) if version_text and upload is None else None
    except ValueError:
        raise WhatIfError("the event number and the version are whole numbers") from None
    if upload is None:
        found = await what_if(
            backend.store, backend.charts, entity, from_seq=from_seq, version=version
        )
        return _shown(found, None)
    body = await upload.read(MAX_CHART_BYTES + 1)
    if len(body) > MAX_CHART_BYTES:
        raise WhatIfError(f"a chart file is at most {MAX_CHART_BYTES} bytes")
    with tempfile.TemporaryDirectory(prefix="channelsync-whatif-") as folder:
        path = Path(folder) / "chart.yaml"
        path.write_bytes(body)
        found = await what_if(
            backend.store, backend.charts, entity, from_seq=from_seq, chart_file=path
        )
    return _shown(found, upload.filename)


def _shown(found: WhatIf, file_name: str | None) -> dict[str, Any]:
    def outcome(o: Any) -> str:
        if o.outcome == "transitioned":
            return f"{o.from_state} → {o.to_state}"
        return f"{o.outcome}: {o.reason}" if o.reason else str(o.outcome)

    return {
        "chart": found.chart,
        "version": found.version,
        "file": file_name,
        "from_seq": found.from_seq,
        "state_before": found.state_before,
        "first_difference": found.first_difference,
        "final_logged": found.final_logged,
        "final_replayed": found.final_replayed,
        "differing": sum(1 for row in found.rows if row.differs),
        "rows": [
            {
                "seq": row.seq,
                "type": row.type,
                "logged": outcome(row.logged),
                "replayed": outcome(row.replayed),
                "differs": row.differs,
            }
            for row in found.rows
        ],
    }


__all__ = ["what_if_page"]
