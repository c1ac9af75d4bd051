"""The options of a conformance run, each declared once: as a field of ``Options`` with its flag and help.

From these declarations come ``metro-e2e check``'s options (``add_arguments``), the pytest plugin's
``--metro-*`` options and ``metro_*`` ini keys (``add_pytest_options``, ``from_pytest``) and the option table
of ``docs/conformance.md`` (``markdown_table``). ``metro-e2e check`` hands its ``Options`` to the pytest
session as an object (``Preset``), never as an argv the plugin would parse back.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from metro_e2e.conformance.catalogue import QUICK
from metro_e2e.errors import ConfigError
from metro_e2e.pipeline import backend as kfp_backends

DEFAULT_LATENCY_BUDGET_MS = 250.0
DEFAULT_KFP_RUN_TIMEOUT_S = 1800.0
DEFAULT_RESTART_TIMEOUT_S = 120.0
DEFAULT_SLOWER_RATIO = 2.0  # a clause markedly slower than in a baseline: this many times its time ...
DEFAULT_SLOWER_FLOOR_S = 5.0  # ... and at least this many seconds more
REPORT_LINE_MARK = "METRO-E2E-REPORT "  # --log-json: the line that carries the JSON report


def in_results_dir(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with the reports and the evidence under ``results_dir`` where they have no path of their own."""
    folder = values.get("results_dir")
    if not folder:
        return dict(values)
    defaults = {"report_json": "report.json", "junit_xml": "junit.xml", "evidence_dir": "evidence"}
    return {
        **{k: f"{folder.rstrip('/')}/{name}" for k, name in defaults.items()},
        **{k: v for k, v in values.items() if v is not None},
    }


@dataclass(frozen=True)
class Flag:
    """How an ``Options`` field is set: ``metro-e2e check <flag>``, and (``pytest``) the plugin's option
    ``--metro-<field>`` and ini key ``metro_<field>``. ``flag=None``: not an option of ``check``."""

    flag: str | None
    help: str
    metavar: str | None = None
    pytest: bool = True
    choices: tuple[str, ...] = ()  # the values it may take (none: any)


def _option(
    default: Any,
    flag: str | None,
    help: str,
    *,
    metavar: str | None = None,
    pytest: bool = True,
    choices: tuple[str, ...] = (),
) -> Any:
    return field(default=default, metadata={"flag": Flag(flag, help, metavar, pytest, choices)})


@dataclass(frozen=True, kw_only=True)
class Options:
    """What one conformance run is asked to do (``dataclasses.replace`` derives a changed copy)."""

    url: str | None = _option(
        None, "--url", "gateway URL (default: start the local stack and check that)", metavar="URL", pytest=False
    )
    quick: bool = _option(False, "--quick", f"only {', '.join(QUICK)}: is the install alive")
    skip: tuple[str, ...] = _option(
        (), "--skip", "clauses (SRV-6) or components (KFP) to mark skipped", metavar="ID|PREFIX"
    )
    allow_promote: bool = _option(
        False, "--allow-promote", "run the promote clauses (they change what the platform serves)"
    )
    restart_serving: str | Callable[[], Any] | None = _option(
        None,
        "--restart-serving",
        "command that restarts serving, for SRV-5, e.g. 'kubectl rollout restart deployment "
        "mlflow-model-deployment -n kubeflow' (the local stack restarts its own)",
        metavar="CMD",
    )
    strict: bool = _option(False, "--strict", "advisory clauses fail instead of warn")
    report_json: str | None = _option(None, "--report-json", "write the JSON report here", metavar="PATH")
    junit_xml: str | None = _option(
        None, "--junit-xml", "write a JUnit XML report here (pytest: --junitxml)", metavar="PATH", pytest=False
    )
    evidence_dir: str | None = _option(
        None, "--evidence-dir", "keep request/response excerpts of the checks here", metavar="DIR"
    )
    results_dir: str | None = _option(
        None,
        "--results-dir",
        "write report.json, junit.xml and evidence/ here (unless given their own paths): an in-cluster Job's folder",
        metavar="DIR",
        pytest=False,
    )
    bundle: str | None = _option(
        None,
        "--bundle",
        "write one .tar.gz with the JSON report, JUnit, HTML, evidence, the resolved settings (secrets masked), the "
        "versions found, the local stack's logs and a manifest of sha256s (read it with: metro-e2e report)",
        metavar="PATH",
        pytest=False,
    )
    html: str | None = _option(
        None, "--html", "write a self-contained HTML page of the run here", metavar="PATH", pytest=False
    )
    baseline: str | None = _option(
        None,
        "--baseline",
        "gate on regressions against this earlier run (a bundle or JSON report): a clause that failed there and "
        "still fails is a known failure and does not fail the run; one that passed there and does not now does",
        metavar="RUN",
        pytest=False,
    )
    slower_ratio: float = _option(
        DEFAULT_SLOWER_RATIO,
        "--slower-ratio",
        "with --baseline (and in diff): a clause is markedly slower, a regression, at this many times its time",
        metavar="RATIO",
        pytest=False,
    )
    slower_floor_s: float = _option(
        DEFAULT_SLOWER_FLOOR_S,
        "--slower-floor",
        "... and at least this many seconds more (so a fast clause's noise is not a regression)",
        metavar="SECONDS",
        pytest=False,
    )
    log_json: bool = _option(
        False,
        "--log-json",
        f"after the table, print the JSON report on one line starting '{REPORT_LINE_MARK}' (for kubectl logs)",
        pytest=False,
    )
    step_image: str | None = _option(
        None, "--step-image", "step image for the KFP clauses (see the Dockerfile)", metavar="IMAGE"
    )
    kfp_backend: str = _option(
        kfp_backends.DEFAULT_BACKEND,
        "--kfp-backend",
        f"KFP backend the platform runs; KFP-2 compiles the pipeline for it ({', '.join(kfp_backends.CHOICES)}; "
        f"'{kfp_backends.SDK}': as the kfp SDK writes it)",
        metavar="VERSION",
        choices=kfp_backends.CHOICES,
    )
    latency_budget_ms: float = _option(
        DEFAULT_LATENCY_BUDGET_MS, "--latency-budget-ms", "SRV-6 p95 budget in ms", metavar="MS"
    )
    restart_timeout_s: float = _option(
        DEFAULT_RESTART_TIMEOUT_S,
        "--restart-timeout",
        "how long SRV-5 waits for serving after the restart",
        metavar="SECONDS",
    )
    progress: bool = _option(False, None, "one line per clause as it ends (check always prints them)")
    progress_format: str = _option(
        "human",
        "--progress",
        "the line per clause as it ends: human, or jsonl (also one JSON object per clause: id, verdict, seconds)",
        metavar="FORMAT",
        choices=("human", "jsonl"),
    )
    kfp_run_timeout_s: float = DEFAULT_KFP_RUN_TIMEOUT_S  # KFP-3's wait for the run: not an option yet
    skip_reasons: Mapping[str, str] = field(default_factory=dict)  # why a --skip selector was added (local stack)
    settings_json: str | None = None  # where the session writes the settings it resolved (check's bundle)

    def __post_init__(self) -> None:
        """An option given an empty text or a number that is not a positive finite one is bad input
        (``ConfigError``): it would otherwise skip a clause quietly (an empty restart command), fail it for no
        reason (a 0 ms budget) or make it prove nothing (an infinite one)."""
        for f, flag in declared():
            _refuse_bad(f, getattr(self, f.name), flag.flag or _pytest_flag(f))


def _refuse_bad(f: dataclasses.Field, value: Any, shown: str) -> None:
    """``ConfigError`` naming the option as the user wrote it (``shown``) when ``value`` is empty or not a positive
    finite number."""
    if isinstance(value, str) and not value.strip():
        raise ConfigError(f"{shown} is empty", setting=f.name, source=shown, hint="give a value or leave it out")
    choices = f.metadata["flag"].choices
    if choices and value not in choices:
        raise ConfigError(
            f"{shown} {value!r} is not one metro-e2e knows",
            setting=f.name,
            source=shown,
            hint=f"give one of {', '.join(choices)}, or leave it out for {f.default}",
        )
    if _kind(f) == "float" and not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ConfigError(
            f"{shown} {value:g} is not a positive number",
            setting=f.name,
            source=shown,
            hint=f"give a positive number, or leave it out for {f.default:g}",
        )


def declared() -> list[tuple[dataclasses.Field, Flag]]:
    """Every ``Options`` field that is an option, with its declaration, in declaration order."""
    return [(f, f.metadata["flag"]) for f in dataclasses.fields(Options) if "flag" in f.metadata]


def described(options: Options) -> dict[str, Any]:
    """Each option's value as the run used it (a restart that is a function, the local stack's own, by name)."""
    out: dict[str, Any] = {}
    for f, _ in declared():
        value = getattr(options, f.name)
        out[f.name] = (
            list(value) if isinstance(value, tuple) else f"<{value.__qualname__}>" if callable(value) else value
        )
    return out


def _kind(f: dataclasses.Field) -> str:
    default = f.default
    if isinstance(default, bool):
        return "flag"
    if isinstance(default, tuple):
        return "list"
    if isinstance(default, float):
        return "float"
    return "text"


def _pytest_flag(f: dataclasses.Field) -> str:
    return "--metro-" + f.name.replace("_", "-")


def usage(name: str) -> str:
    """How a user sets the option ``name`` on ``check``: ``--step-image IMAGE``."""
    flag = Options.__dataclass_fields__[name].metadata["flag"]
    return f"{flag.flag} {flag.metavar}" if flag.metavar else str(flag.flag)


def wait_name(name: str) -> str:
    """What a clause's budget calls the wait the option ``name`` sets."""
    flag = Options.__dataclass_fields__[name].metadata.get("flag")
    return flag.flag if flag and flag.flag else "the KFP run timeout"


def add_arguments(parser, only: tuple[str, ...] | None = None) -> None:
    """``metro-e2e check``'s options (argparse), one per declaration (``only``: just these, for another command)."""
    for f, flag in declared():
        if flag.flag is None or (only is not None and f.name not in only):
            continue
        kind = _kind(f)
        shown = f" (default {f.default:g})" if kind == "float" else ""
        if kind == "flag":
            parser.add_argument(flag.flag, dest=f.name, action="store_true", help=flag.help)
        elif kind == "list":
            parser.add_argument(
                flag.flag, dest=f.name, nargs="+", action="extend", default=[], metavar=flag.metavar, help=flag.help
            )
        else:
            parser.add_argument(
                flag.flag,
                dest=f.name,
                type=float if kind == "float" else str,
                default=None,
                metavar=flag.metavar,
                help=flag.help + shown,
            )


def from_arguments(args) -> Options:
    """The ``Options`` an argparse namespace built by ``add_arguments`` asks for."""
    values = {}
    for f, flag in declared():
        if flag.flag is None:
            continue
        value = getattr(args, f.name)
        if value is None:
            continue
        values[f.name] = tuple(value) if _kind(f) == "list" else value
    return Options(**in_results_dir(values))


def add_pytest_options(parser) -> None:
    """The plugin's ``--metro-*`` options and ``metro_*`` ini keys, one per declaration (``url`` is a setting)."""
    group = parser.getgroup("metro", "metro-e2e: the Metro platform under test")
    for f, flag in declared():
        if not flag.pytest:
            continue
        kind = _kind(f)
        name, ini = _pytest_flag(f), f"metro_{f.name}"
        text = f"{flag.help} (ini {ini})"
        if kind == "flag":
            group.addoption(name, dest=f"metro_{f.name}", action="store_true", default=None, help=text)
            parser.addini(ini, f"{flag.help} (true or false)", type=_ini_type(kind), default="")
        elif kind == "list":
            group.addoption(name, dest=f"metro_{f.name}", action="append", default=[], metavar=flag.metavar, help=text)
            parser.addini(ini, flag.help, type="args", default=[])
        else:
            group.addoption(name, dest=f"metro_{f.name}", default=None, metavar=flag.metavar, help=text)
            parser.addini(ini, flag.help, type=_ini_type(kind), default="")


def from_pytest(config) -> Options:
    """The ``Options`` a pytest session asks for: ``--metro-*`` over ``metro_*`` ini keys over the defaults."""
    values: dict[str, Any] = {}
    for f, flag in declared():
        if not flag.pytest:
            continue
        kind, ini = _kind(f), f"metro_{f.name}"
        given, shown = config.getoption(f"metro_{f.name}"), _pytest_flag(f)
        if given is None or given == []:  # not on the command line (an empty value there is an error, below)
            given, shown = config.getini(ini), f"ini {ini}"
            if given in (None, [], ""):  # an empty ini key is unset
                continue
        if kind == "flag" and isinstance(given, str):
            given = _truth(given, f, ini)
        if kind == "float":
            try:
                given = float(given)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"{shown} = {given!r} is not a number", setting=f.name, source=shown, hint="give a number"
                ) from None
        _refuse_bad(f, given, shown)
        values[f.name] = tuple(given) if kind == "list" else given
    return Options(**values)


_TRUTH = dict.fromkeys(("y", "yes", "t", "true", "on", "1"), True) | dict.fromkeys(
    ("n", "no", "f", "false", "off", "0"), False
)


def _ini_type(kind: str) -> Any:
    """An ini key's type: a flag's is a bool and a number's a number in native TOML, text in an ini file, and empty
    means unset. pytest 9.2 takes a union (``bool | str``: the first type that accepts the value); before 9.2 every
    key is text, read by ``from_pytest``."""
    import pytest
    from packaging.version import Version

    if Version(pytest.__version__) < Version("9.2") or kind not in ("flag", "float"):
        return "string"
    return (bool | str) if kind == "flag" else (int | float | str)


def _truth(text: str, f: dataclasses.Field, ini: str) -> bool:
    try:
        return _TRUTH[text.strip().lower()]
    except KeyError:
        raise ConfigError(
            f"ini {ini} = {text!r} is not true or false",
            setting=f.name,
            source=f"ini {ini}",
            hint="write true or false, or leave it out",
        ) from None


_PYTEST_OWN = {"url": "`--metro-url` (the setting)", "junit_xml": "`--junitxml` (pytest's own)"}


def markdown_table() -> str:
    """The option table of ``docs/conformance.md``."""
    rows = ["| `check` option | pytest option | ini key | default | what it does |", "|---|---|---|---|---|"]
    for f, flag in declared():
        default = "" if f.default in (None, (), False) else f"{f.default:g}" if _kind(f) == "float" else f.default
        cli = f"`{usage(f.name)}`".replace("|", "\\|") if flag.flag else ""
        plugin = f"`{_pytest_flag(f)}`" if flag.pytest else _PYTEST_OWN.get(f.name, "")
        ini = f"`metro_{f.name}`" if flag.pytest or f.name == "url" else ""
        rows.append(f"| {cli} | {plugin} | {ini} | {default} | {flag.help} |")
    return "\n".join(rows)


@dataclass(frozen=True, eq=False)
class Preset:
    """A pytest plugin object carrying the ``Options`` that ``metro-e2e check`` asks for: given to
    ``pytest.main(args, plugins=[Preset(options)])``, the metro plugin uses them instead of its own options."""

    options: Options

    def pytest_configure(self, config) -> None:
        from metro_e2e.conformance.session import OPTIONS

        config.stash[OPTIONS] = self.options
