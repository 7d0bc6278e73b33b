"""Load, reduced for ``make test`` (the full 150 renders by 50 clients is in ``make bench``):
30 renders of a 1-second clip submitted at once by 10 clients, two real workers.

Every render must be accepted, end succeeded (none stuck), never have a step run twice at
the same time, and leave a usage ledger that adds up: each video and thumbnail charged
once, at its size, to its owner.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import defaultdict

from notefall.common.tiers import Tier
from notefall.server.kit.db import transaction_scope
from notefall.server.renders.models import RenderStep
from notefall.server.renders.states import RenderStatus
from notefall.server.usage.models import ChargedFile
from notefall.server.usage.service import UsageService
from sqlalchemy import func, select

from tests.support.render_farm import API, FAST_SETTINGS

from .test_render_chaos import Farm, assert_no_step_ran_twice_at_once
from .test_render_chaos import farm as farm  # the fixture

CLIENTS = 10
RENDERS_PER_CLIENT = 3
# The enterprise plan runs 4 renders at once; each client submits 3 different ones.
FRAME_RATES = (24, 25, 30)


def test_30_renders_from_10_concurrent_clients_all_succeed_once_with_a_consistent_ledger(
    farm: Farm,
):
    clients = []
    for n in range(CLIENTS):
        headers = farm.user(f"client{n}@example.com", Tier.ENTERPRISE)
        clients.append((headers, farm.project(headers, seconds=1.0, pitch=40 + n)))
    farm.worker("one")
    farm.worker("two")

    answers: dict[int, list[tuple[int, str]]] = defaultdict(list)
    start = threading.Barrier(CLIENTS)

    def submit_all(n: int) -> None:
        headers, project = clients[n]
        start.wait()
        for fps in FRAME_RATES[:RENDERS_PER_CLIENT]:
            body = {"project_id": project, "settings": {**FAST_SETTINGS, "fps": fps}}
            response = farm.client.post(f"{API}/renders", json=body, headers=headers)
            answers[n].append((response.status_code, response.text))

    threads = [threading.Thread(target=submit_all, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    codes = [code for replies in answers.values() for code, _ in replies]
    assert codes == [202] * (CLIENTS * RENDERS_PER_CLIENT), answers
    ids = [uuid.UUID(json.loads(text)["id"]) for replies in answers.values() for _, text in replies]
    assert len(set(ids)) == len(ids)

    rows = farm.wait(ids, 120, reconciling=True)
    assert {r.status for r in rows.values()} == {RenderStatus.SUCCEEDED.value}
    client = farm.redis
    for render_id in ids:
        assert_no_step_ran_twice_at_once(client, render_id)

    with transaction_scope(farm.database) as session:
        unfinished = session.scalar(
            select(func.count())
            .select_from(RenderStep)
            .where(RenderStep.render_id.in_(ids), RenderStep.status != "done")
        )
        assert unfinished == 0
        charges = session.execute(
            select(ChargedFile.key, ChargedFile.owner_id, ChargedFile.bytes, ChargedFile.kind)
        ).all()
        by_key = {key: (owner, size, kind) for key, owner, size, kind in charges}
        assert len(by_key) == len(charges)  # a file is charged once
        for render in rows.values():
            assert by_key[render.output_key] == (render.owner_id, render.output_bytes, "render")
            assert render.thumbnail_key in by_key
        render_keys = {k for r in rows.values() for k in (r.output_key, r.thumbnail_key)}
        assert {k for k, (_o, _s, kind) in by_key.items() if kind == "render"} == render_keys
        owners = {r.owner_id for r in rows.values()}
        for owner in owners:
            assert UsageService(session).stored_bytes(owner) == sum(
                size for o, size, _kind in by_key.values() if o == owner
            )
