"""The per-request HTTP metrics keep the exporter's names and labels: route templates, final statuses."""

from tests.conftest import build_asset

DETAIL = 'method="GET",route_template="/inventory/assets/<asset_id:asset_id>"'


def test_each_request_counts_once_under_its_route_template_and_final_status(client, add_assets):
    add_assets(build_asset("BTC", 1, price="1"))
    for path in ("/inventory/assets/BTC", "/inventory/assets/BTC", "/inventory/assets/NOPE", "/no/such/route"):
        client.get(path)
    client.get("/metrics")
    text = client.get("/metrics").get_data(as_text=True)
    assert f'flask_http_request_duration_seconds_count{{{DETAIL},status="200"}} 2.0' in text
    assert f'flask_http_request_duration_seconds_count{{{DETAIL},status="404"}} 1.0' in text
    assert 'flask_http_request_duration_seconds_count{method="GET",route_template="<unmatched>",status="404"} 1.0' in text
    assert 'flask_http_request_total{method="GET",status="200"} 2.0' in text
    assert 'flask_http_request_total{method="GET",status="404"} 2.0' in text
    assert 'route_template="/metrics"' not in text  # scrapes are not requests to measure
    assert "flask_exporter_info{" in text
