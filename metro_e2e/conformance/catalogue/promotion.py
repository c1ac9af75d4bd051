"""``ml-models/latest/``, and promoting a registered version to it. Its clauses (CONTRACT.md), each with the breakages proven to fail it; its checks are in
``conformance/checks/promotion.py``."""

from metro_e2e.conformance.catalogue._model import (
    CORE,
    PROMOTE,
    READ,
    SRV,
    UNIT,
    Budget,
    breakage,
    declare,
)

CLAUSES = (
    declare(
        "PRM-1",
        CORE,
        READ,
        "S3-2",
        "`ml-models/latest/` holds one complete MLflow model (an `MLmodel` file and every "
        "file it references) that `mlflow.pyfunc.load_model` loads.",
        Budget(30, 3),
        slug="latest_is_a_complete_model",
        breakages=(
            breakage("partial state", "latest/ is empty (the pod crash-loops)", f"{SRV}test_empty_latest_fails_prm_1"),
            breakage(
                "partial state",
                "a file MLmodel references is missing",
                f"{SRV}test_a_file_mlmodel_references_missing_fails_prm_1",
            ),
            breakage(
                "wrong content",
                "the model file does not load",
                f"{SRV}test_a_model_file_that_does_not_load_fails_prm_1",
            ),
        ),
    ),
    declare(
        "PRM-2",
        CORE,
        PROMOTE,
        "MLF-5, PRM-1",
        "Promoting a registered version replaces `latest/` with exactly that "
        "version's files (MLflow 2 and 3 layouts), with no moment where `latest/` is empty or mixed, and records which "
        "version it holds.",
        Budget(60, 3),
        slug="promotion",
        breakages=(
            breakage(
                "missing permission",
                "latest/ cannot be written",
                f"{SRV}test_latest_not_writable_fails_prm_2_and_leaves_latest_alone",
            ),
            breakage(
                "partial state",
                "a file of the previous model stays (the delete is acknowledged, nothing deleted)",
                f"{SRV}test_a_stale_file_left_in_latest_fails_prm_2",
            ),
            breakage(
                "partial state",
                "the marker's write is lost: latest/ does not record what it holds",
                f"{SRV}test_a_marker_write_that_is_lost_fails_prm_2",
            ),
            breakage(
                "partial state",
                "while the swap runs, readers cannot see it is under way and load a mix",
                f"{SRV}test_a_promotion_readers_cannot_see_in_progress_fails_prm_2",
                f"{UNIT}test_prm_2_fails_a_promotion_whose_half_swapped_state_a_reader_would_load",
            ),
            breakage(
                "partial state",
                "latest/ emptied before the copy (the published serve_model.py)",
                f"{UNIT}test_prm_2_fails_a_promotion_that_empties_latest_first",
            ),
        ),
    ),
)
