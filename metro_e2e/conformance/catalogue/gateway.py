"""The gateway. Its clauses (CONTRACT.md), each with the breakages proven to fail it; its checks are in
``conformance/checks/gateway.py``."""

from metro_e2e.conformance.catalogue._model import (
    BAD_INPUT,
    CORE,
    GW_S3,
    READ,
    UNIT,
    Budget,
    breakage,
    declare,
)

CLAUSES = (
    declare(
        "GW-1",
        CORE,
        READ,
        "",
        "The gateway answers HTTP at the external URL within the connect timeout.",
        Budget(5, 1),
        slug="gateway_answers",
        quick=True,
        breakages=(
            breakage(
                "no answer",
                "nothing listens at the URL",
                "tests/integration/test_check.py::test_unreachable_gateway_fails_gw_1_and_still_writes_the_reports",
                f"{BAD_INPUT}[url-refused]",
            ),
            breakage("no answer", "the gateway's host name does not resolve", f"{BAD_INPUT}[url-unresolvable]"),
            breakage("timeout", "the gateway accepts connections and never answers", f"{BAD_INPUT}[url-silent]"),
            breakage(
                "wrong status",
                "https:// given for a plain-HTTP gateway (the TLS handshake fails)",
                f"{BAD_INPUT}[url-https-on-http]",
            ),
            breakage(
                "wrong status",
                "the gateway answers 500 or 501 to everything",
                f"{GW_S3}test_gateway_answering_a_server_error_to_everything_fails_gw_1[500]",
                f"{GW_S3}test_gateway_answering_a_server_error_to_everything_fails_gw_1[501]",
                f"{UNIT}test_gw_1_fails_on_any_5xx",
            ),
        ),
    ),
)
