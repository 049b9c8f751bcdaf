"""The console's pure parts: the pool beside IRCC, the rounds table and series, the health figures."""

from __future__ import annotations

from console_service.views import (
    leaf_bins,
    metrics_view,
    parse_ircc_distribution,
    pool_view,
    rounds_view,
)

CSV = """distribution_as_of,total,crs_601_1200,crs_501_600,crs_451_500,crs_491_500,crs_481_490,crs_471_480,\
crs_461_470,crs_451_460,crs_401_450,crs_441_450,crs_431_440,crs_421_430,crs_411_420,crs_401_410,\
crs_351_400,crs_301_350,crs_0_300
2025-01-01,100,1,9,30,5,5,5,5,10,40,8,8,8,8,8,10,5,5
2025-02-01,200,2,18,60,10,10,10,10,20,80,16,16,16,16,16,20,10,10
"""


def test_the_last_row_of_irccs_csv_is_read() -> None:
    ircc = parse_ircc_distribution(CSV, "test.csv")
    assert (ircc.as_of, ircc.total) == ("2025-02-01", 200)
    assert ircc.counts["491-500"] == 10 and ircc.counts["451-500"] == 60


def test_subtotal_bins_are_left_out_and_the_rest_go_high_to_low() -> None:
    labels = list(parse_ircc_distribution(CSV, "t").counts)
    leaves = leaf_bins(labels)
    assert "451-500" not in leaves and "401-450" not in leaves
    assert leaves[0] == "601-1200" and leaves[-1] == "0-300"
    assert len(leaves) == 15


def test_the_pool_beside_ircc_in_shares_of_each_total() -> None:
    ircc = parse_ircc_distribution(CSV, "t")
    distribution = {
        "as_of": "2026-05-01T00:00:00Z", "rules_version": "2025-03-25", "total": 4,
        "bins": [
            {"range": "491-500", "count": 3}, {"range": "451-500", "count": 3}, {"range": "0-300", "count": 1}
        ],
    }  # fmt: skip
    view = pool_view(distribution, ircc)
    by_range = {b["range"]: b for b in view["bins"]}
    assert "451-500" not in by_range
    assert by_range["491-500"] == {
        "range": "491-500",
        "pool": 3,
        "pool_share": 75.0,
        "ircc": 10,
        "ircc_share": 5.0,
    }
    assert by_range["601-1200"]["pool"] == 0 and by_range["601-1200"]["ircc"] == 2
    assert view["ircc"]["as_of"] == "2025-02-01"


def test_without_irccs_file_the_pool_still_shows() -> None:
    view = pool_view({"total": 1, "bins": [{"range": "0-300", "count": 1}]}, None)
    assert view["ircc"] is None and view["bins"] == [{"range": "0-300", "pool": 1, "pool_share": 100.0}]


def test_rounds_as_ircc_publishes_them_and_series_per_type() -> None:
    rounds = [
        {"round_number": 2, "held_at": "2026-02-01T10:00:00Z", "type": "cec", "cutoff_crs": 500,
         "invitations": 20, "ircc": {"drawNumber": "2", "drawName": "Canadian Experience", "drawCRS": "500"}},
        {"round_number": 1, "held_at": "2026-01-01T10:00:00Z", "type": "general", "cutoff_crs": 480,
         "invitations": 50, "ircc": {"drawNumber": "1", "drawName": "No Program", "drawCRS": "480"}},
    ]  # fmt: skip
    view = rounds_view(rounds)
    assert [row["drawNumber"] for row in view["table"]] == ["2", "1"]
    assert view["table"][0]["drawCutOff"] == ""
    assert view["columns"][4]["title"] == "CRS score of lowest-ranked candidate invited"
    assert view["series"]["general"] == [{"x": "2026-01-01T10:00:00Z", "round": 1, "cutoff": 480, "size": 50}]


METRICS = """# HELP ee_http_requests_total HTTP requests served
# TYPE ee_http_requests_total counter
ee_http_requests_total{service="draws",method="GET",route="/v1/draws",status="200"} 7.0
ee_http_requests_total{service="draws",method="GET",route="/v1/draws",status="503"} 2.0
# HELP ee_consumer_lag_messages Records behind the end of each partition
# TYPE ee_consumer_lag_messages gauge
ee_consumer_lag_messages{consumer="draws",topic="t",partition="0"} 3.0
ee_consumer_lag_messages{consumer="draws",topic="t",partition="1"} 4.0
# HELP ee_consumer_dead_lettered_total Records sent to the DLQ
# TYPE ee_consumer_dead_lettered_total counter
ee_consumer_dead_lettered_total{consumer="draws",reason="not_json"} 1.0
# HELP ee_outbox_unpublished_messages Outbox rows not yet on Kafka
# TYPE ee_outbox_unpublished_messages gauge
ee_outbox_unpublished_messages 5.0
# HELP ee_outbox_oldest_unpublished_age_seconds Age of the oldest
# TYPE ee_outbox_oldest_unpublished_age_seconds gauge
ee_outbox_oldest_unpublished_age_seconds 12.5
"""


def test_health_figures_from_prometheus_text() -> None:
    assert metrics_view(METRICS) == {
        "consumer_lag": 7.0, "dead_lettered": 1.0, "outbox_backlog": 5.0, "outbox_oldest_s": 12.5,
        "server_errors": 2.0,
    }  # fmt: skip


def test_a_figure_a_service_does_not_export_is_none_not_zero() -> None:
    view = metrics_view(METRICS.split("# HELP ee_consumer_lag_messages")[0])
    assert view["consumer_lag"] is None and view["dead_lettered"] is None and view["outbox_backlog"] is None
    assert metrics_view(None)["server_errors"] is None
