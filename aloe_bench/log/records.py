"""The run log as typed records: what results.json holds, field by field.

Every record is a dataclass read from and written to JSON by the one mechanism in `Record`:
declared fields are typed; keys this version does not know (written by another version, or by a
stage that adds its own section) are kept in `extra` and written back as they were, so a read and
write loses nothing. Optional fields (`_OPTIONAL`) are left out of the JSON when they are None, so
a field that was absent stays absent. Readers use the attributes; nothing outside `aloe_bench.log`
digs in the JSON dicts.

`metrics` is one record for every task (`Metrics`): the per-turn curve every task fills (AL(k), AVG,
IR, ...), whatever else the task's metric functions return (kept as they wrote it), and `values`:
every named figure with its interval and n, read the same way whatever the task (what the viewer,
the leaderboard and the lm-eval bridge show). Nothing here tests which task made a run.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

from aloe_bench.errors import UserInputError

# The JSON values a record keeps as they are (its `extra`, free-form sections such as `machine`).
Json = Any

RunStatus = Literal["running", "complete", "incomplete", "failed"]
# Statuses older versions wrote, and what they mean in the closed set.
LEGACY_STATUSES = {"interrupted": "incomplete"}
ConversationStatus = Literal["running", "complete", "failed"]

_R = TypeVar("_R", bound="Record")


class RunLogError(UserInputError):
    """results.json holds something this version cannot read as the run log."""


@dataclass(kw_only=True)
class Record:
    """A JSON object with typed fields; unknown keys survive in `extra`."""

    extra: dict[str, Json] = field(default_factory=dict)
    # The JSON keys the record was read with, in their order: an optional field read as an explicit
    # null is written back as null, one that was absent stays absent, and the keys keep their order.
    given: tuple[str, ...] = field(default=(), repr=False, compare=False)

    _OPTIONAL: ClassVar[frozenset[str]] = frozenset()  # left out of the JSON when None (and not given)
    _EMPTY_OMITTED: ClassVar[frozenset[str]] = frozenset()  # left out when empty (and not given)
    _KEYS: ClassVar[dict[str, str]] = {}  # field name -> JSON key, where they differ
    _ORDER: ClassVar[tuple[str, ...]] = ()  # JSON keys written first, in this order (else: the fields')

    @classmethod
    def from_dict(cls: type[_R], data: Json, where: str = "") -> _R:
        if not isinstance(data, dict):
            raise RunLogError(
                f"{where or cls.__name__}: a JSON object was expected, got {type(data).__name__}"
            )
        plan = _plan(cls)
        values: dict[str, Json] = {}
        for name, key, reader, _, _ in plan.fields:
            if key in data:
                value = data[key]
                values[name] = value if reader is None else reader(value, f"{where}.{key}" if where else key)
        values["extra"] = {k: v for k, v in data.items() if k not in plan.keys}
        values["given"] = tuple(data)
        return cls(**values)

    def to_dict(self) -> dict[str, Json]:
        out: dict[str, Json] = {}
        given = self.given
        for name, key, _, optional, empty_omitted in _plan(type(self)).fields:
            value = getattr(self, name)
            if key not in given and ((value is None and optional) or (empty_omitted and not value)):
                continue
            out[key] = value if type(value) in _PLAIN else _write(value)
        out.update(self.extra)
        if self._ORDER and not given:
            out = {**{k: out[k] for k in self._ORDER if k in out}, **out}
        if given:  # as it was read: its keys first in their order, then what was added since
            out = {**{k: out[k] for k in given if k in out}, **out}
        return out


# How a JSON value becomes a field's type (None: kept as it is), made once per type: a run log of
# 100,000 turns is read and written field by field, so the type hints are not walked per value.
_Reader = Callable[[Json, str], Json]
_PLAIN = frozenset({str, int, float, bool, type(None)})


@dataclass(frozen=True)
class _Plan:
    fields: tuple[
        tuple[str, str, _Reader | None, bool, bool], ...
    ]  # name, key, reader, optional, omitted if empty
    keys: frozenset[str]


_PLANS: dict[type, _Plan] = {}


def _plan(cls: type[Record]) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        entries = tuple(
            (
                f.name,
                cls._KEYS.get(f.name, f.name),
                _reader(hints[f.name]),
                f.name in cls._OPTIONAL,
                f.name in cls._EMPTY_OMITTED,
            )
            for f in fields(cls)
            if f.name not in ("extra", "given")
        )
        plan = _PLANS[cls] = _Plan(entries, frozenset(key for _, key, _, _, _ in entries))
    return plan


def _reader(tp: Json) -> _Reader | None:
    """How a value becomes type `tp`: records (also inside lists, dicts and `X | None`) are built and
    a Literal is checked; any other value is kept as it is (the writers are this package's)."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        records = [a for a in options if isinstance(a, type) and issubclass(a, Record)]
        containers = [a for a in options if get_origin(a) in (list, dict)]
        record = records[0] if records else None
        container = _reader(containers[0]) if containers else None
        if record is None and container is None:
            return None

        def read_union(value: Json, where: str) -> Json:
            if value is None:
                return None
            if record is not None and isinstance(value, dict):
                return record.from_dict(value, where)
            if container is not None and isinstance(value, (list, dict)):
                return container(value, where)
            return value

        return read_union
    if origin is Literal:
        allowed = get_args(tp)

        def read_literal(value: Json, where: str) -> Json:
            if value not in allowed:
                raise RunLogError(f"{where}: {value!r} is not one of {', '.join(map(str, allowed))}")
            return value

        return read_literal
    if isinstance(tp, type) and issubclass(tp, Record):
        return tp.from_dict
    if origin is list:
        (item_type,) = get_args(tp) or (Json,)
        item = _reader(item_type)

        def read_list(value: Json, where: str) -> Json:
            if not isinstance(value, list):
                return value
            if item is None:
                return list(value)
            return [item(v, f"{where}[{i}]") for i, v in enumerate(value)]

        return read_list
    if origin is dict:
        _, value_type = get_args(tp) or (str, Json)
        entry = _reader(value_type)

        def read_dict(value: Json, where: str) -> Json:
            if not isinstance(value, dict):
                return value
            if entry is None:
                return dict(value)
            return {k: entry(v, f"{where}.{k}") for k, v in value.items()}

        return read_dict
    return None


def _write(value: Json) -> Json:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, list):
        return [_write(v) for v in value]
    if isinstance(value, dict):
        return {k: _write(v) for k, v in value.items()}
    return value


# -- config -------------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class RoleRecord(Record):
    """One role's spec and generation settings, with the backend that served it."""

    spec: str | None = None
    args: dict[str, str] = field(default_factory=dict)
    max_new_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None  # absent when unset (runs before it existed, and most runs)
    backend: dict[str, Json] | None = None  # what the backend says of itself (spec, args, checkpoint...)
    label: str | None = None  # a judge panel member's name in results (its spec, #N when repeated)
    system_role: str | None = None  # stated preferences/persona: "native", or "folded" into the user turn

    _OPTIONAL = frozenset({"backend", "label", "system_role", "repetition_penalty"})


@dataclass(kw_only=True)
class InputsRecord(Record):
    """What was evaluated: a persona set, or a Multifaceted data set."""

    set_name: str | None = None
    source: str | None = None
    count: int | None = None
    sha256: str | None = None

    _KEYS = {"set_name": "set"}
    _OPTIONAL = frozenset({"set_name", "source", "count", "sha256"})


@dataclass(kw_only=True)
class PromptRecord(Record):
    name: str | None = None
    version: str | None = None
    sha256: str | None = None

    _OPTIONAL = frozenset({"name", "version", "sha256"})


@dataclass(kw_only=True)
class RejudgedFrom(Record):
    """The run a re-judged run was judged from."""

    path: str | None = None
    config_hash: str | None = None
    judge: RoleRecord | None = None
    protocol: str | None = None
    judge_reasks: int | None = None


# The kind of the runs that record none. ALOE's config has never written its kind (every other
# task's config does), so a run of any format version without one is an ALOE run: a fact of the
# recorded data, read here once so that no reader guesses it.
UNRECORDED_KIND = "aloe"


@dataclass(kw_only=True)
class ConfigRecord(Record):
    """`config`: the settings that made the run. A run without a simulated user (Multifaceted) has
    no `simulator`; a run without a judge panel has no `judges`."""

    task: str | None = None
    kind: str | None = None  # the task's kind as it recorded it ("multifaceted"); absent: an ALOE run
    model: RoleRecord = field(default_factory=RoleRecord)
    simulator: RoleRecord | None = None
    judge: RoleRecord | None = None
    judges: list[RoleRecord] | None = None
    personas: InputsRecord | None = None
    data: str | None = None
    data_sha256: str | None = None
    limit: int | None = None
    turns: int | None = None
    seed: int | None = None
    protocol: str | None = None
    persona_disclosure: str | None = None
    judge_reasks: int | None = None
    judge_repeats: int | None = None
    simulator_retries: int | None = None
    controls: list[str] | None = None
    epochs: int | None = None
    prompts: dict[str, PromptRecord] | None = None
    packages: dict[str, str | None] | None = None
    machine: dict[str, Json] | None = None
    rejudged_from: RejudgedFrom | None = None

    _OPTIONAL = frozenset(
        {
            "task", "kind", "simulator", "judge", "judges", "personas", "data", "data_sha256", "limit",
            "turns", "seed", "protocol", "persona_disclosure", "judge_reasks", "judge_repeats",
            "simulator_retries", "controls", "epochs", "prompts", "packages", "machine", "rejudged_from",
        }
    )  # fmt: skip

    @property
    def effective_kind(self) -> str:
        """The kind of task that made the run: `kind` as recorded, UNRECORDED_KIND when there is none
        (`kind` itself stays as written, so a rewritten results.json says what it said)."""
        return self.kind or UNRECORDED_KIND

    @property
    def disclosure(self) -> str:
        return self.persona_disclosure or "hidden"

    def prompt_sha256(self, role: str) -> str | None:
        prompt = (self.prompts or {}).get(role)
        return prompt.sha256 if prompt is not None else None


# -- metrics ------------------------------------------------------------------------------------------------
Band = list[float | None]  # [low, high] of a confidence interval; None where undefined


@dataclass(kw_only=True)
class CIRecord(Record):
    level: float | None = None
    n_bootstrap: int | None = None
    avg: Band | None = None
    ir: Band | None = None
    al: list[Band | None] | None = None

    _OPTIONAL = frozenset({"level", "n_bootstrap", "avg", "ir", "al"})

    def band(self, name: str) -> Band:
        value = {"avg": self.avg, "ir": self.ir}.get(name)
        return value if value is not None else [None, None]


@dataclass(kw_only=True)
class MetricValue(Record):
    """One named figure of a run: its value, its interval (None: none was computed) and its n (the
    items it is over)."""

    value: float | None = None
    interval: Band | None = None
    n: int | None = None


# Keys of a metrics dict that count items rather than measure them (not figures of `values`).
COUNT_KEYS = frozenset({"turns", "conversations", "instances", "failed", "planned"})


def metric_values(metrics: dict[str, Json]) -> dict[str, MetricValue]:
    """Every number a task's metrics hold at the top level, keyed by its name, with its interval and
    n by the one convention every metric function follows: the interval is `ci.<name>` (the
    bootstrap's) or `<name>_ci`; n is `<name>_n`, else the items the curve is over (`conversations`).
    Counts (`COUNT_KEYS`, `*_n`) and flags are no figures; a figure not defined on this run (too few
    turns, no scores yet) is there with value None."""
    given_ci = metrics.get("ci")
    ci: dict[str, Json] = given_ci if isinstance(given_ci, dict) else {}
    items = metrics.get("conversations")
    values: dict[str, MetricValue] = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) and value is not None:
            continue
        if name in COUNT_KEYS or name.endswith("_n"):
            continue
        interval = ci.get(name) if name in ci else metrics.get(f"{name}_ci")
        n = metrics.get(f"{name}_n", items)
        values[name] = MetricValue(
            value=value,
            interval=list(interval) if isinstance(interval, (list, tuple)) else None,
            n=n if isinstance(n, int) and not isinstance(n, bool) else None,
        )
    return values


@dataclass(kw_only=True)
class Metrics(Record):
    """`metrics`, whatever the task: the per-turn alignment curve and its summaries (every task's
    scored turns make one; metrics/alignment.py), the task's own figures (in `extra`, as written),
    and `values`: every named figure with interval and n (`metric_values`)."""

    turns: int | None = None
    conversations: int = 0
    al: list[float | None] = field(default_factory=list)
    n: list[int] = field(default_factory=list)
    invalid: list[int] = field(default_factory=list)
    avg: float | None = None
    ir: float | None = None
    n_al: list[float | None] | None = None
    n_ir: float | None = None
    n_r2: float | None = None
    ci: CIRecord = field(default_factory=CIRecord)
    notes: dict[str, str] | None = None
    failed: int = 0
    planned: int | None = None
    values: dict[str, MetricValue] = field(default_factory=dict)

    _OPTIONAL = frozenset({"turns", "n_al", "notes", "planned"})

    @property
    def has_ci(self) -> bool:
        return self.ci.avg is not None and any(b is not None for b in self.ci.al or [])

    def figure(self, name: str) -> MetricValue | None:
        """A named figure (`values`), or None when the run has none of that name."""
        return self.values.get(name)


# -- usage, warnings ----------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class RoleUsage(Record):
    """One role's calls in this invocation (models/roles.py Usage, plus the API backend's rate stats
    and the cost)."""

    calls: int = 0
    cached: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    truncated: int | None = None
    retries: int | None = None
    throttled: int | None = None
    concurrency_peak: int | None = None
    concurrency_max: int | None = None
    cost_usd: float | None = None  # absent: no API role; null: an API model with no known price

    _OPTIONAL = frozenset(
        {"truncated", "retries", "throttled", "concurrency_peak", "concurrency_max", "cost_usd"}
    )

    @property
    def answered(self) -> int:
        return self.calls + self.cached - self.failed


@dataclass(kw_only=True)
class RunWarning(Record):
    code: str = ""
    message: str = ""


# -- trust sections -----------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class JudgeReliability(Record):
    avg: float | None = None
    ir: float | None = None
    judgements: int | None = None
    invalid: int | None = None
    repeats: int | None = None
    test_retest_alpha: float | None = None
    n: int | None = None

    _OPTIONAL = frozenset({"avg", "ir", "judgements", "invalid", "repeats", "test_retest_alpha", "n"})


@dataclass(kw_only=True)
class Agreement(Record):
    """Agreement between the judges of a panel (first repeat of each): alpha, and per pair of judges
    their Spearman, exact and within-one agreement."""

    alpha: float | None = None
    n: int | None = None
    pairs: list[dict[str, Json]] = field(default_factory=list)

    _OPTIONAL = frozenset({"alpha", "n"})


@dataclass(kw_only=True)
class Reliability(Record):
    """Judge reliability (metrics/reliability.py): per judge, between judges, the noise floor."""

    judges: dict[str, JudgeReliability] = field(default_factory=dict)
    between_judges: Agreement | None = None
    noise_floor: dict[str, Json] | None = None
    judge_calls: dict[str, int] | None = None

    _OPTIONAL = frozenset({"between_judges", "noise_floor", "judge_calls"})


@dataclass(kw_only=True)
class SwapControl(Record):
    discrimination: float | None = None
    discrimination_ci: Band | None = None
    auc: float | None = None
    auc_ci: Band | None = None
    n: int | None = None
    personas: int | None = None
    mean_true: float | None = None
    mean_swapped: float | None = None

    _OPTIONAL = frozenset(
        {"discrimination", "discrimination_ci", "auc", "auc_ci", "n", "personas", "mean_true", "mean_swapped"}
    )


@dataclass(kw_only=True)
class Validity(Record):
    """Judge validity controls (metrics/validity.py), per judge label."""

    length_bias: dict[str, dict[str, Json]] | None = None
    swap: dict[str, SwapControl] | None = None
    human: dict[str, Json] | None = None  # judges against human labels (`aloe-bench label import`)

    _OPTIONAL = frozenset({"length_bias", "swap", "human"})


@dataclass(kw_only=True)
class DisclosurePoint(Record):
    turn: int = 0
    mean: float | None = None
    ci: Band | None = None
    n: int | None = None
    invalid: int | None = None

    _OPTIONAL = frozenset({"ci", "n", "invalid"})


@dataclass(kw_only=True)
class Audit(Record):
    """The simulated-user audit (scorers/audit): how much of the persona it gave away, per turn."""

    disclosure: list[DisclosurePoint] = field(default_factory=list)


# -- pricing, batching, failures, io ------------------------------------------------------------------------
@dataclass(kw_only=True)
class RolePrice(Record):
    """A priced role's price per million tokens, and where it came from."""

    input: float | None = None
    output: float | None = None
    source: str | None = None


@dataclass(kw_only=True)
class Pricing(Record):
    """`pricing`: the price table used (its version, date, source) and each priced role's price
    (None: an API model with no known price)."""

    table: dict[str, Json] | None = None
    roles: dict[str, RolePrice | None] = field(default_factory=dict)


@dataclass(kw_only=True)
class BatchStats(Record):
    """`batching.<backend spec>`: how an in-process backend batched the run's requests."""

    batches: int | None = None
    requests: int | None = None
    largest_batch: int | None = None
    prompt_tokens: int | None = None
    reused_tokens: int | None = None

    _OPTIONAL = frozenset({"batches", "requests", "largest_batch", "prompt_tokens", "reused_tokens"})


@dataclass(kw_only=True)
class Failure(Record):
    """`failures[]`: an item that failed, and why."""

    id: str = ""
    error: str | None = None


@dataclass(kw_only=True)
class IoStats(Record):
    """`io`: what a journaled run wrote to disk (its bytes grow with the run, not its square)."""

    bytes_written: int | None = None

    _OPTIONAL = frozenset({"bytes_written"})


# -- results.json -------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class RunResults(Record):
    """results.json."""

    format_version: int = 0
    aloe_bench_version: str | None = None
    label: str | None = None
    config_hash: str | None = None
    config: ConfigRecord = field(default_factory=ConfigRecord)
    started: str | None = None
    pricing: Pricing | None = None
    status: RunStatus = "running"
    updated: str | None = None
    elapsed_s: float | None = None
    metrics: Metrics = field(default_factory=Metrics)
    usage: dict[str, RoleUsage] = field(default_factory=dict)
    warnings: list[RunWarning] = field(default_factory=list)
    batching: dict[str, BatchStats] | None = None
    failures: list[Failure] = field(default_factory=list)
    reliability: Reliability | None = None
    validity: Validity | None = None
    io: IoStats | None = None
    audit: Audit | None = None

    _OPTIONAL = frozenset(
        {
            "aloe_bench_version", "label", "config_hash", "started", "pricing", "updated", "elapsed_s",
            "batching", "reliability", "validity", "io", "audit",
        }
    )  # fmt: skip

    @classmethod
    def from_dict(cls, data: Json, where: str = "") -> RunResults:
        if isinstance(data, dict):
            data = _migrated(data)
        return super().from_dict(data, where)

    def warning_codes(self) -> set[str]:
        return {w.code for w in self.warnings}


def _migrated(data: dict[str, Json]) -> dict[str, Json]:
    """What older versions wrote, in today's shape: the closed status set, `metrics.values` (format
    <= 2 had the figures only under their own keys; the recorder's fresh metrics get theirs here
    too, by the same convention), and no placeholder
    simulated user on runs that have none (Multifaceted runs of format <= 1 wrote
    `"simulator": {"spec": null}` so that readers expecting one did not crash). The recorder builds
    its record through here too, so neither is written any more (Multifaceted's config hash still
    covers the placeholder, so that older runs resume into the same folder)."""
    data = dict(data)
    status = data.get("status")
    if isinstance(status, str) and status in LEGACY_STATUSES:
        data["status"] = LEGACY_STATUSES[status]
    config = data.get("config")
    if isinstance(config, dict):
        simulator = config.get("simulator")
        if isinstance(simulator, dict) and simulator.get("spec") is None:
            config = {k: v for k, v in config.items() if k != "simulator"}
        if isinstance(config.get("personas"), str):  # the persona set's name, before it was described
            config = {**config, "personas": {"set": config["personas"]}}
        data["config"] = config
    metrics = data.get("metrics")
    if isinstance(metrics, dict) and "values" not in metrics:  # format <= 2: no named figures yet
        values = {k: v.to_dict() for k, v in metric_values(metrics).items()}
        data["metrics"] = {**metrics, "values": values}
    return data


# -- conversations.jsonl: a turn's scores, and what its judges said -----------------------------------------
@dataclass(kw_only=True)
class TurnScore(Record):
    """`turn.scores.<scorer>`: one scorer's verdict on the turn (metrics/samples.py `Score`): its
    value (None: no verdict) and, where the scorer gives them, the answer it scored, its explanation
    and anything else it reports (left out when absent; the texts are the turn's own fields)."""

    value: float | None = None
    answer: str | None = None
    explanation: str | None = None
    metadata: dict[str, Json] | None = None

    _OPTIONAL = frozenset({"answer", "explanation", "metadata"})


@dataclass(kw_only=True)
class JudgementRecord(Record):
    """One judge's verdict on one turn (one panel member, one repeat): the parsed 1-5 score (None
    when no answer could be read after the re-asks) kept beside the raw answer and every re-ask."""

    judge: str = ""
    repeat: int = 0
    score: int | None = None
    raw: str | None = None
    attempts: int = 0
    history: list[str] = field(default_factory=list)
    error: str | None = None
    persona_id: str | None = None  # swap control only: the persona the reply was judged against

    _OPTIONAL = frozenset({"persona_id"})


@dataclass(kw_only=True)
class RubricSample(Record):
    """One rubric judge answer (one repeat): its 1-5 score, the answer, and every answer when re-asked."""

    score: int | None = None
    raw: str | None = None
    attempts: int = 0
    error: str | None = None
    answers: list[str] | None = None

    _OPTIONAL = frozenset({"answers"})


@dataclass(kw_only=True)
class RubricScore(Record):
    """A Multifaceted rubric's grade: the mean over its repeats (a float), with each sample."""

    rubric: int = 0
    dimension: str = ""
    criteria: str | None = None
    score: float | None = None
    samples: list[RubricSample] = field(default_factory=list)

    _OPTIONAL = frozenset({"criteria"})
