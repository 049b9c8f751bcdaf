"""Pool queries over HTTP, from a view filled by hand: the selection contract the draws service reads,
ownership of the candidate endpoint, the distribution, the top and the provinces' search."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from ranking_app import Member, app_with, client, problem, token, view_of
from ranking_factories import pid

from ranking_service.api import LeanCandidateReads

A, B, C, D, E = (pid(n) for n in range(1, 6))


def members() -> list[Member]:
    return [
        Member(A, 470, minutes=5, programs=("cec", "fsw"), categories=("french",), owner="alice",
               noc_codes=("21231",), lowest_clb={"en": 9, "fr": 7}),
        Member(B, 470, minutes=1, programs=("fsw",), owner="bob", citizenship="FR", noc_codes=("31102",),
               lowest_clb={"en": 6}),
        Member(C, 512, minutes=9, programs=("cec", "pnp"), categories=("healthcare",), owner="alice",
               noc_codes=("31102", "32101")),
        Member(D, 401, programs=("fst",), categories=("trades",), owner="dan", noc_codes=("72010",),
               lowest_clb={"en": 5}),
        Member(E, 300, minutes=3, programs=("fsw",), owner="eve", lowest_clb={}),
    ]  # fmt: skip


ORDER = [C, B, A, D, E]  # 512; 470 tie broken by the earlier submission (B); 401; 300


# --- selection (the draws service's contract) ------------------------------------------------------


async def test_selection_answers_the_contract_shape_in_pool_order() -> None:
    app = app_with(members())
    async with client(app) as http:
        response = await http.post(
            "/v1/pool/selection",
            json={"program": None, "category": None, "size": 3, "exclude": []},
            headers=token("ops", "svc-draws"),
        )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"position", "pool_size", "eligible_count", "candidates"}
    assert answer["position"] == {"x.ee.profile.events:0": 7}
    assert (answer["pool_size"], answer["eligible_count"]) == (5, 5)
    assert [c["profile_id"] for c in answer["candidates"]] == ORDER[:3]
    first = answer["candidates"][0]
    assert set(first) == {
        "profile_id",
        "owner",
        "crs",
        "submitted_at",
        "programs",
        "categories",
        "citizenship",
    }
    assert first["owner"] == "alice" and first["crs"] == 512 and first["citizenship"] == "IN"
    assert first["programs"] == ["cec", "pnp"] and first["categories"] == ["healthcare"]
    assert datetime.fromisoformat(first["submitted_at"]).utcoffset() is not None


async def test_selection_by_program_or_category_leaves_out_the_excluded() -> None:
    app = app_with(members())
    async with client(app) as http:
        by_program = await http.post(
            "/v1/pool/selection", json={"program": "cec", "size": 10, "exclude": [C]}, headers=token("ops")
        )
        by_category = await http.post(
            "/v1/pool/selection", json={"category": "trades", "size": 10}, headers=token("ops")
        )
    program = by_program.json()
    assert [c["profile_id"] for c in program["candidates"]] == [A]
    assert program["eligible_count"] == 1 and program["pool_size"] == 5
    assert [c["profile_id"] for c in by_category.json()["candidates"]] == [D]


async def test_selection_refuses_bad_bodies_and_other_roles() -> None:
    app = app_with(members())
    async with client(app) as http:
        both = await http.post(
            "/v1/pool/selection",
            json={"program": "cec", "category": "french", "size": 1},
            headers=token("ops"),
        )
        unknown = await http.post(
            "/v1/pool/selection", json={"program": "xyz", "size": 1}, headers=token("ops")
        )
        negative = await http.post("/v1/pool/selection", json={"size": -1}, headers=token("ops"))
        officer = await http.post("/v1/pool/selection", json={"size": 1}, headers=token("officer"))
        anonymous = await http.post("/v1/pool/selection", json={"size": 1})
    assert problem(both, 422)["errors"][0]["field"] == "category"
    assert problem(unknown, 422)["errors"][0]["field"] == "program"
    assert problem(negative, 422)["errors"][0]["field"] == "size"
    problem(officer, 403)
    problem(anonymous, 401)


async def test_selection_of_10000_over_100000_answers_quickly() -> None:
    many = [Member(pid(100 + n), n % 900 + 100, minutes=n % 5000) for n in range(100_000)]
    app = app_with(many)
    async with client(app) as http:
        started = time.perf_counter()
        response = await http.post("/v1/pool/selection", json={"size": 10_000}, headers=token("ops"))
        elapsed = time.perf_counter() - started
    candidates = response.json()["candidates"]
    assert len(candidates) == 10_000
    keys = [(-c["crs"], c["submitted_at"], c["profile_id"]) for c in candidates]
    assert keys == sorted(keys)
    assert elapsed < 2.0  # generous: a smoke check, the budget is measured by `make bench`


async def test_queries_answer_503_until_the_pool_is_loaded() -> None:
    app = app_with(loaded=False)
    async with client(app) as http:
        response = await http.post("/v1/pool/selection", json={"size": 1}, headers=token("ops"))
    assert problem(response, 503)["title"] == "Pool loading"
    assert response.headers["retry-after"] == "5"


# --- one candidate: own only for candidates and partners ------------------------------------------


async def test_a_candidate_sees_their_own_standing_and_rank() -> None:
    app = app_with(members())
    async with client(app) as http:
        response = await http.get(f"/v1/pool/candidates/{A}", headers=token("candidate", "alice"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"crs", "breakdown", "rank", "pool_size", "submitted_at", "programs", "categories"}
    assert (body["crs"], body["rank"], body["pool_size"]) == (470, 3, 5)
    assert body["breakdown"] == {"age": 100, "education": 370}
    assert body["programs"] == ["cec", "fsw"] and body["categories"] == ["french"]


async def test_someone_elses_profile_is_a_404_for_candidates_and_partners_but_not_officers() -> None:
    app = app_with(members())
    async with client(app) as http:
        other_candidate = await http.get(f"/v1/pool/candidates/{B}", headers=token("candidate", "alice"))
        other_partner = await http.get(f"/v1/pool/candidates/{B}", headers=token("partner", "alice"))
        officer = await http.get(f"/v1/pool/candidates/{B}", headers=token("officer", "olga"))
        ops = await http.get(f"/v1/pool/candidates/{B}", headers=token("ops", "oscar"))
        province = await http.get(f"/v1/pool/candidates/{B}", headers=token("province", "p", province="ON"))
        missing = await http.get(f"/v1/pool/candidates/{pid(99)}", headers=token("ops"))
        anonymous = await http.get(f"/v1/pool/candidates/{B}")
    problem(other_candidate, 404)
    problem(other_partner, 404)
    assert officer.json()["rank"] == ops.json()["rank"] == 2
    problem(province, 403)
    problem(missing, 404)
    problem(anonymous, 401)


# --- distribution and top ------------------------------------------------------------------------


async def test_the_distribution_is_public_in_the_published_bins() -> None:
    app = app_with(members())
    async with client(app) as http:
        body = (await http.get("/v1/pool/distribution")).json()
    bins = {b["range"]: b["count"] for b in body["bins"]}
    assert list(bins)[:3] == ["601-1200", "501-600", "451-500"]
    assert body["total"] == 5
    assert (bins["501-600"], bins["451-500"], bins["461-470"], bins["401-410"], bins["0-300"]) == (
        1,
        2,
        2,
        1,
        1,
    )


async def test_top_is_for_ops_and_filters_by_program() -> None:
    app = app_with(members())
    async with client(app) as http:
        top = await http.get("/v1/pool/top", params={"n": 2, "program": "fsw"}, headers=token("ops"))
        refused = await http.get("/v1/pool/top", headers=token("candidate", "alice"))
        bad = await http.get("/v1/pool/top", params={"category": "nope"}, headers=token("ops"))
    body = top.json()
    assert [(c["profile_id"], c["rank"]) for c in body["candidates"]] == [(B, 1), (A, 2)]
    assert body["eligible_count"] == 3 and body["pool_size"] == 5
    problem(refused, 403)
    problem(bad, 422)


# --- provinces' search ---------------------------------------------------------------------------


async def test_a_province_searches_by_noc_score_clb_and_program_page_by_page() -> None:
    app = app_with(members())
    headers = token("province", "on-officer", province="ON")
    async with client(app) as http:
        by_noc = await http.get("/v1/pool/search", params={"noc_code": ["31102", "72010"]}, headers=headers)
        by_score = await http.get("/v1/pool/search", params={"min_crs": 400, "max_crs": 470}, headers=headers)
        by_clb = await http.get("/v1/pool/search", params={"min_clb": 7}, headers=headers)
        by_programs = await http.get("/v1/pool/search", params={"program": ["fst", "pnp"]}, headers=headers)
        first = await http.get("/v1/pool/search", params={"limit": 2}, headers=headers)
        cursor = first.json()["next_cursor"]
        second = await http.get("/v1/pool/search", params={"limit": 2, "cursor": cursor}, headers=headers)
        third = await http.get(
            "/v1/pool/search", params={"limit": 2, "cursor": second.json()["next_cursor"]}, headers=headers
        )
        candidate = await http.get("/v1/pool/search", headers=token("candidate", "alice"))
        bad_cursor = await http.get("/v1/pool/search", params={"cursor": "garbage"}, headers=headers)

    def ids(response: object) -> list[str]:
        return [item["profile_id"] for item in response.json()["items"]]  # type: ignore[attr-defined]

    assert ids(by_noc) == [C, B, D]
    assert ids(by_score) == [B, A, D]
    assert ids(by_clb) == [C, A]
    assert ids(by_programs) == [C, D]
    assert ids(first) == [C, B] and ids(second) == [A, D] and ids(third) == [E]
    assert third.json()["next_cursor"] is None
    item = by_noc.json()["items"][0]
    assert set(item) == {
        "profile_id",
        "crs",
        "programs",
        "categories",
        "noc_codes",
        "lowest_clb",
        "submitted_at",
    }
    assert "owner" not in item and "citizenship" not in item
    problem(candidate, 403)
    assert problem(bad_cursor, 422)["errors"][0]["field"] == "cursor"


async def test_the_view_follows_committed_changes_by_revision() -> None:
    from ranking_service.domain.pool import PoolEntry
    from ranking_service.domain.view import CandidateInfo, MemoryChange

    app = app_with(members())
    view = view_of(app)
    entry = PoolEntry(A, 600, view.pool.get(A).submitted_at, frozenset({"fsw"}))  # type: ignore[union-attr]
    info = CandidateInfo.of("alice", "IN", {}, ("99999",), {}, 5)
    assert A in view.by_noc["21231"]
    view.apply([MemoryChange(A, 5, entry, info)], {"x.ee.profile.events:0": 9})
    view.apply([MemoryChange(A, 4, None, None)])  # older: ignored
    assert view.pool.rank(A) == 1 and view.positions["x.ee.profile.events:0"] == 9
    assert view.by_noc["99999"] == {A} and A not in view.by_noc.get("21231", set())
    view.apply([MemoryChange(A, 6, None, None)])
    assert A not in view.pool and view.info(A) is None and "99999" not in view.by_noc


async def test_the_lean_candidate_path_answers_as_the_route_does() -> None:
    """`api.LeanCandidateReads` answers the 200s itself and hands every other GET candidate to the
    route: each request gets the same status, headers and body with it as without it."""
    lean = app_with(members())
    routed = app_with(members())
    routed.user_middleware = [m for m in routed.user_middleware if m.cls is not LeanCandidateReads]
    requests = [
        (A, token("candidate", "alice")), (B, token("candidate", "alice")), (B, token("partner", "bob")),
        (B, token("officer", "olga")), (C, token("ops")), (B, token("province", "p", province="ON")),
        (pid(99), token("ops")), (B, {}), (B, {"Authorization": "Basic abc"}),
        (B, {"Authorization": "bearer " + token("ops")["Authorization"].split()[1]}),
        (B, {"Authorization": "Bearer not-a-token"}), ("x" * 65, token("ops")), (A + "/more", token("ops")),
    ]  # fmt: skip
    async with client(lean) as fast, client(routed) as slow:
        for n, (profile_id, auth) in enumerate(requests):
            headers = {**auth, "X-Correlation-Id": f"lean-{n}"}
            got = await fast.get(f"/v1/pool/candidates/{profile_id}", headers=headers)
            want = await slow.get(f"/v1/pool/candidates/{profile_id}", headers=headers)
            assert (got.status_code, got.content) == (want.status_code, want.content), profile_id
            for header in ("content-type", "content-length", "www-authenticate", "x-correlation-id"):
                assert got.headers.get(header) == want.headers.get(header), header
        ok = await fast.get(f"/v1/pool/candidates/{A}", headers=token("candidate", "alice"))
        metrics = (await fast.get("/metrics")).text
    assert ok.status_code == 200 and ok.headers["x-correlation-id"]
    assert 'route="/v1/pool/candidates/{profile_id}",service="ranking",status="200"' in metrics
    view_of(lean).loaded = False
    async with client(lean) as fast:
        problem(await fast.get(f"/v1/pool/candidates/{A}", headers=token("ops")), 503)


async def test_a_commit_goes_into_the_view_in_slices_and_its_positions_after_it() -> None:
    """`apply_to_view` yields to the loop between changes (here after each one): a query in between
    sees each candidate before or after its change, whole, and the old positions until the last."""
    from ranking_service.application.projection import apply_to_view
    from ranking_service.domain.pool import PoolEntry
    from ranking_service.domain.view import CandidateInfo, MemoryChange

    app = app_with(members())
    view = view_of(app)
    before = {m.profile_id: m.crs for m in members()}
    changes = [
        MemoryChange(p, 5, PoolEntry(p, before[p] + 100, view.pool.get(p).submitted_at, frozenset({"fsw"})),  # type: ignore[union-attr]
                     CandidateInfo.of("alice", "IN", {}, ("21231",), {}, 5))
        for p in (A, B, C, D)
    ]  # fmt: skip
    seen: list[tuple[dict[str, int], dict[str, int]]] = []
    applying = asyncio.create_task(apply_to_view(view, changes, {"x.ee.profile.events:0": 9}, slice_s=0))
    while not applying.done():
        crs = {p: view.pool.get(p).crs for p in before}  # type: ignore[union-attr]
        seen.append((crs, dict(view.positions)))
        await asyncio.sleep(0)
    await applying
    assert len({tuple(crs.values()) for crs, _ in seen}) >= 3  # the loop ran between changes
    for crs, positions in seen:
        assert all(crs[p] in (before[p], before[p] + 100) for p in before)
        assert positions == {"x.ee.profile.events:0": 7}
        assert len(view.pool) == 5
    assert view.positions == {"x.ee.profile.events:0": 9}
    assert [view.pool.get(p).crs for p in (A, B, C, D, E)] == [570, 570, 612, 501, 300]  # type: ignore[union-attr]
