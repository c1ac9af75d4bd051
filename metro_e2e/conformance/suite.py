"""The live tier: one test per CONTRACT.md clause, each claiming its clause with ``@pytest.mark.clause``.

Shipped inside the package so ``metro-e2e check`` runs it from any install
(``pytest --pyargs metro_e2e.conformance.suite``); ``tests/live`` imports it.
The work is in ``checks.py``; verdicts, order and blocking in the plugin.
"""

import pytest

clause = pytest.mark.clause
# Dependencies need one process and catalogue order: all clause tests live in this one module, and the
# project runs pytest-xdist with --dist loadfile, which keeps a module on one worker.


@clause("GW-1")
def test_gw_1_gateway_answers(metro_run):
    metro_run.check("GW-1")


@clause("S3-1")
def test_s3_1_signed_list_buckets(metro_run):
    metro_run.check("S3-1")


@clause("S3-2")
def test_s3_2_platform_buckets_exist(metro_run):
    metro_run.check("S3-2")


@clause("S3-3")
def test_s3_3_write_read_list_delete(metro_run):
    metro_run.check("S3-3")


@clause("S3-4")
def test_s3_4_anonymous_refused(metro_run):
    metro_run.check("S3-4")


@clause("S3-5")
def test_s3_5_not_default_credentials(metro_run):
    metro_run.check("S3-5")


@clause("MLF-1")
def test_mlf_1_rest_api_through_gateway(metro_run):
    metro_run.check("MLF-1")


@clause("MLF-2")
def test_mlf_2_ui_loads(metro_run):
    metro_run.check("MLF-2")


@clause("MLF-3")
def test_mlf_3_client_server_pair(metro_run):
    metro_run.check("MLF-3")


@clause("MLF-4")
def test_mlf_4_artifact_location(metro_run):
    metro_run.check("MLF-4")


@clause("MLF-5")
def test_mlf_5_log_and_register(metro_run):
    metro_run.check("MLF-5")


@clause("KFP-1")
def test_kfp_1_api_and_ui(metro_run):
    metro_run.check("KFP-1")


@clause("KFP-2")
def test_kfp_2_pipeline_uploads(metro_run):
    metro_run.check("KFP-2")


@clause("KFP-3")
def test_kfp_3_run_succeeds(metro_run):
    metro_run.check("KFP-3")


@clause("KFP-4")
def test_kfp_4_run_lineage(metro_run):
    metro_run.check("KFP-4")


@clause("PRM-1")
def test_prm_1_latest_is_a_complete_model(metro_run):
    metro_run.check("PRM-1")


@clause("PRM-2")
def test_prm_2_promotion(metro_run):
    metro_run.check("PRM-2")


@clause("SRV-1")
def test_srv_1_predictions(metro_run):
    metro_run.check("SRV-1")


@clause("SRV-2")
def test_srv_2_host_routing_and_redirect(metro_run):
    metro_run.check("SRV-2")


@clause("SRV-3")
def test_srv_3_bad_input_is_4xx(metro_run):
    metro_run.check("SRV-3")


@clause("SRV-4")
def test_srv_4_serves_latest(metro_run):
    metro_run.check("SRV-4")


@clause("SRV-5")
def test_srv_5_serves_promoted_after_restart(metro_run):
    metro_run.check("SRV-5")


@clause("SRV-6")
def test_srv_6_latency_budget(metro_run):
    metro_run.check("SRV-6")


TEST_OF = {  # clause id -> the name of the test that claims it (for reports of clauses pytest never reached)
    f.pytestmark[0].args[0]: name for name, f in dict(globals()).items() if name.startswith("test_")
}
