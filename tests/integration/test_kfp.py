"""metro_e2e.kfp against a fake KFP v2beta1 server: success, a failed run, a canceled run, a server that hangs."""

from __future__ import annotations

import time

import pytest
import requests
import yaml

from metro_e2e.errors import EndpointUnreachable
from metro_e2e.kfp import Kfp, KfpError

from .fake_kfp import FakeKfp


@pytest.fixture
def metro_pipeline_file(request) -> str:
    return str(request.config.rootpath / "fixtures" / "iris_pipeline.yaml")


def _client(fake: FakeKfp, **kw) -> Kfp:
    return Kfp(fake.url, connect_timeout=2, read_timeout=kw.pop("read_timeout", 5), **kw)


def _started_run(kfp: Kfp, pipeline_file: str) -> str:
    """Upload the pipeline and start one run of it; the run's id."""
    pid, vid = kfp.upload(pipeline_file, "p")
    return kfp.start(pipeline_id=pid, version_id=vid, run_name="r", experiment="e", params={})[1]


def test_upload_run_wait_delete(metro_pipeline_file):
    with FakeKfp(outcome="SUCCEEDED") as fake:
        kfp = _client(fake)
        assert kfp.healthz()["tag_name"] == "2.4.0"
        pipeline_id, version_id = kfp.upload(metro_pipeline_file, "metro-e2e-run1")
        experiment_id, run_id = kfp.start(
            pipeline_id=pipeline_id,
            version_id=version_id,
            run_name="r",
            experiment="metro-e2e-run1",
            params={"promote": False},
        )
        lines: list[str] = []
        outcome = kfp.wait(run_id, timeout_s=30, poll_s=0.05, progress=lines.append)
        assert outcome.state == "SUCCEEDED" and "SUCCEEDED" in outcome.describe()
        assert any("RUNNING" in line for line in lines), "progress lines while waiting"
        kfp.delete_pipeline(pipeline_id)
        kfp.delete_experiment(experiment_id)
        assert f"DELETE /apis/v2beta1/pipelines/{pipeline_id}" in fake.calls
        assert f"DELETE /apis/v2beta1/pipelines/{pipeline_id}/versions/{version_id}" in fake.calls


def test_failed_run_names_the_failing_task_and_its_error(metro_pipeline_file):
    with FakeKfp(outcome="FAILED") as fake:
        kfp = _client(fake)
        run_id = _started_run(kfp, metro_pipeline_file)
        outcome = kfp.wait(run_id, timeout_s=30, poll_s=0.05)
    assert outcome.state == "FAILED" and outcome.failing_task == "train-model"
    assert "MLflow did not answer" in outcome.describe()


def test_canceled_run_ends_the_wait_at_once(metro_pipeline_file):
    with FakeKfp(outcome="CANCELED", polls_before_end=1) as fake:
        kfp = _client(fake)
        run_id = _started_run(kfp, metro_pipeline_file)
        started = time.monotonic()
        outcome = kfp.wait(run_id, timeout_s=600, poll_s=0.05)
    assert outcome.state == "CANCELED" and time.monotonic() - started < 5
    assert outcome.failing_task == "train-model"


def test_a_run_that_never_ends_times_out_with_its_last_state(metro_pipeline_file):
    with FakeKfp(outcome="NEVER") as fake:
        kfp = _client(fake)
        run_id = _started_run(kfp, metro_pipeline_file)
        outcome = kfp.wait(run_id, timeout_s=0.5, poll_s=0.1)
    assert outcome.state == "TIMED_OUT" and "still RUNNING" in outcome.error


def test_a_hanging_healthz_is_unreachable_within_the_timeout():
    with FakeKfp(hang=("healthz",)) as fake:
        started = time.monotonic()
        with pytest.raises(EndpointUnreachable, match="did not answer: ReadTimeout"):
            _client(fake, read_timeout=1).healthz()
        assert time.monotonic() - started < 5


def test_a_hanging_get_run_is_unreachable_within_the_timeout(metro_pipeline_file):
    with FakeKfp(hang=("/runs/",)) as fake:
        kfp = _client(fake, read_timeout=1)
        run_id = _started_run(kfp, metro_pipeline_file)
        started = time.monotonic()
        with pytest.raises(EndpointUnreachable, match="cannot get the run"):
            kfp.wait(run_id, timeout_s=60, poll_s=0.05)
        assert time.monotonic() - started < 10


def test_unknown_pipeline_is_a_kfp_error():
    with FakeKfp() as fake, pytest.raises(KfpError, match="cannot list pipeline versions"):
        _client(fake).delete_pipeline("no-such-pipeline")


# -- the fake is KFP 2.4.0's API: what it answers, and what the client must survive -----------------------------


def _api(fake: FakeKfp, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, fake.url + "/apis/v2beta1" + path, timeout=5, **kw)


@pytest.mark.parametrize(
    ("path", "outcome"),
    [
        pytest.param(("PENDING", "RUNNING", "PAUSED", "RUNNING", "CANCELING"), "CANCELED", id="paused-then-canceled"),
        pytest.param(("PENDING", "RUNNING"), "SKIPPED", id="skipped"),
        pytest.param(("RUNTIME_STATE_UNSPECIFIED", "PENDING", "RUNNING"), "SUCCEEDED", id="unspecified-first"),
    ],
)
def test_the_wait_survives_every_state_2_4_0_reports_and_ends_on_a_terminal_one(metro_pipeline_file, path, outcome):
    with FakeKfp(outcome=outcome, path=path, polls_before_end=len(path)) as fake:
        kfp = _client(fake)
        run_id = _started_run(kfp, metro_pipeline_file)
        lines: list[str] = []
        result = kfp.wait(run_id, timeout_s=30, poll_s=0.01, progress=lines.append)
    assert result.state == outcome
    assert [line.split(": ")[1].split()[0] for line in lines] == [*path, outcome]


def test_an_unknown_run_answers_404_with_a_runtime_error_body(metro_pipeline_file):
    with FakeKfp() as fake:
        answer = _api(fake, "GET", "/runs/no-such-run")
        assert answer.status_code == 404
        assert answer.json() == {
            "error": "Failed to get a run: Failed to fetch run no-such-run: ResourceNotFoundError: Run no-such-run "
            "not found",
            "code": 5,
            "message": "Failed to get a run: Failed to fetch run no-such-run: ResourceNotFoundError: Run no-such-run "
            "not found",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.Status", "code": 5, "message": "Run no-such-run not found"}
            ],
        }
        with pytest.raises(
            KfpError, match=r"cannot get the run: .*HTTP 404: Failed to get a run: .*Run no-such-run not found"
        ):
            _client(fake).wait("no-such-run", timeout_s=5, poll_s=0.05)
        assert _api(fake, "GET", "/no/such/route").status_code == 404  # the mux's plain-text 404


def test_lists_page_as_2_4_0_does_and_refuse_a_bad_page_size():
    with FakeKfp() as fake:
        for i in range(25):
            assert _api(fake, "POST", "/experiments", json={"display_name": f"e{i:02}"}).status_code == 200
        names, token, pages = [], None, 0
        while True:
            page = _api(
                fake, "GET", "/experiments", params={"page_size": 10, **({"page_token": token} if token else {})}
            )
            body = page.json()
            assert body["total_size"] == 25
            names += [e["display_name"] for e in body["experiments"]]
            pages += 1
            token = body.get("next_page_token")
            if not token:
                break
        assert (pages, names) == (3, [f"e{i:02}" for i in range(25)])
        assert len(_api(fake, "GET", "/experiments").json()["experiments"]) == 20  # page size 0 is 20
        bad = _api(fake, "GET", "/experiments", params={"page_size": -1})
        assert (bad.status_code, bad.json()["code"]) == (400, 3)
        assert "The page size should be greater than 0. Got -1" in bad.json()["message"]
        assert _api(fake, "GET", "/experiments", params={"page_size": "ten"}).status_code == 400
        assert _api(fake, "POST", "/experiments", json={"display_name": "e00"}).status_code == 409
        assert _api(fake, "POST", "/runs", json={"display_name": 7}).status_code == 400  # not a string


def test_an_upload_2_4_0_cannot_read_is_refused_with_its_error_body(metro_pipeline_file, tmp_path):
    docs = [d for d in yaml.safe_load_all(open(metro_pipeline_file)) if d]
    docs[0]["root"]["inputDefinitions"]["parameters"]["seed"]["literals"] = [42]  # a field newer than 2.4.0
    newer = tmp_path / "newer.yaml"
    newer.write_text(yaml.safe_dump_all(docs))
    with FakeKfp() as fake:
        with pytest.raises(
            KfpError,
            match=r"cannot upload the pipeline: .*HTTP 500: .*InvalidInputError: unknown template format: pipeline spec is invalid$",
        ):
            _client(fake).upload(str(newer), "metro-e2e-newer")
        raw = _api(fake, "POST", "/pipelines/upload", files={"uploadfile": newer.read_bytes()})
        assert raw.status_code == 500 and set(raw.json()) == {"error_message", "error_details"}
        assert raw.json()["error_message"].endswith(
            "InvalidInputError: unknown template format: pipeline spec is invalid"
        )
        docs[0]["root"]["inputDefinitions"]["parameters"]["seed"].pop("literals")
        docs[0]["schemaVersion"] = "2.0.0"
        older = tmp_path / "older.yaml"
        older.write_text(yaml.safe_dump_all(docs))
        with pytest.raises(
            KfpError, match="KFP only supports schema version 2.1.0, but the pipeline spec has version 2.0.0"
        ):
            _client(fake).upload(str(older), "metro-e2e-older")
        assert _api(fake, "POST", "/pipelines/upload", data=b"x").status_code == 400  # no uploadfile
        assert fake.pipelines == {}
        _client(fake).upload(metro_pipeline_file, "metro-e2e-dup")
        duplicate = _api(
            fake, "POST", "/pipelines/upload", params={"name": "metro-e2e-dup"}, files={"uploadfile": b"x"}
        )
        assert duplicate.status_code in (409, 500)


def test_the_sdk_form_uploads_to_2_4_0_and_its_run_fails_in_the_driver(tmp_path):
    from metro_e2e.pipeline import compile_pipeline

    sdk = compile_pipeline(tmp_path / "sdk.yaml", kfp_backend="sdk")
    with FakeKfp() as fake:
        kfp = _client(fake)
        run_id = _started_run(kfp, str(sdk))
        outcome = kfp.wait(run_id, timeout_s=30, poll_s=0.05)
    assert (outcome.state, outcome.failing_task) == ("FAILED", "load-data")
    assert outcome.error.startswith("failed to unmarshal Kubernetes config, error: KFP 2.4.0's driver cannot read")
    assert 'has no field named "optional"' in outcome.error


def test_an_answer_outside_the_api_is_caught(metro_pipeline_file):
    """The fake checks its own answers against 2.4.0's swagger: a renamed field would not go unnoticed."""
    fake = FakeKfp()
    original = fake._poll  # noqa: SLF001

    def renamed(run):
        answer = original(run)
        answer["status"] = answer.pop("state")  # v1beta1's name for it
        return answer

    fake._poll = renamed  # noqa: SLF001
    with pytest.raises(
        AssertionError,
        match=r"RunService_GetRun 200: \[\"<body>: Additional properties are not allowed \('status' was unexpected\)\"\]",
    ):
        with fake:
            kfp = _client(fake)
            run_id = _started_run(kfp, metro_pipeline_file)
            kfp.wait(run_id, timeout_s=0.3, poll_s=0.05)


def test_struct_and_map_values_come_back_as_sent_false_and_zero_included(metro_pipeline_file):
    """protojson leaves unset message fields out but writes a Struct or a map as it is."""
    with FakeKfp() as fake:
        kfp = _client(fake)
        pipeline_id, version_id = kfp.upload(metro_pipeline_file, "metro-e2e-values")
        experiment = _api(fake, "POST", "/experiments", json={"display_name": "e"}).json()["experiment_id"]
        body = {
            "display_name": "r",
            "experiment_id": experiment,
            "pipeline_version_reference": {"pipeline_id": pipeline_id, "pipeline_version_id": version_id},
            "runtime_config": {"parameters": {"promote": False, "seed": 0, "data_key": ""}},
        }
        run = _api(fake, "POST", "/runs", json=body).json()
        assert run["runtime_config"]["parameters"] == {"promote": False, "seed": 0, "data_key": ""}
        assert "finished_at" not in run and "error" not in run  # unset message fields are left out
        version = _api(fake, "GET", f"/pipelines/{pipeline_id}/versions/{version_id}").json()
        assert version["pipeline_spec"]["root"]["inputDefinitions"]["parameters"]["promote"]["defaultValue"] is False
