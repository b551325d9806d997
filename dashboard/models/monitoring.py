"""Health monitoring: what is probed (Target), what each probe found (ProbeResult), the
rollups that keep long ranges fast (Rollup; FillingRollup for the buckets still filling), and the
outages they add up to (Incident).

History stays fast the way Uptime Kuma v2 and Gatus do it, plus percentiles: raw results are
kept briefly, rollups per minute, hour and day hold counts, latency min/max/sum and a mergeable
latency histogram; the overview reads only the per-target summary the rollup job maintains.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse

from dashboard.models.environment import Environment
from dashboard.validators import resource_name_validator


class ProbeKind(models.TextChoices):
    DSQL = "dsql", "DSQL cluster login"
    LAMBDA_CONFIG = "lambda_config", "API Lambda configuration"
    API_HEALTH = "api_health", "API DSQL health route"
    AURORA = "aurora", "Aurora cluster status"
    DYNAMODB = "dynamodb", "DynamoDB table status"


class HealthMethod(models.TextChoices):
    URL = "url", "GET the health URL"
    INVOKE = "invoke", "invoke the Lambda with an API Gateway event"


class TargetStatus(models.TextChoices):
    UNKNOWN = "unknown", "unknown"
    UP = "up", "up"
    DOWN = "down", "down"
    PAUSED = "paused", "paused"


class Target(models.Model):
    """One thing VelaOps probes on a schedule, with its thresholds and its live state."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="targets")
    kind = models.CharField(max_length=16, choices=ProbeKind.choices)
    name = models.CharField(
        max_length=2048, help_text="The resource probed: cluster identifier, function or table name, or URL."
    )
    label = models.CharField(max_length=200, blank=True, help_text="Shown instead of the name when set.")
    managed = models.BooleanField(
        default=False, editable=False, help_text="Created from the environment's configuration."
    )

    # API health only: how the route is reached.
    health_method = models.CharField(max_length=8, choices=HealthMethod.choices, default=HealthMethod.URL)
    health_path = models.CharField(
        max_length=200, default="/health/dsql", help_text="Invoke only: the route put in the API Gateway event."
    )
    # DSQL only: also upsert and read back a row of the table velaops_probe (DSQL has no temporary tables).
    write_check = models.BooleanField(default=False, help_text="DSQL only: a write/read round trip too.")

    interval_seconds = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(5), MaxValueValidator(86400)]
    )
    timeout_seconds = models.PositiveIntegerField(default=10, validators=[MinValueValidator(1), MaxValueValidator(120)])
    down_after = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Consecutive failures that mark the target down.",
    )
    up_after = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Consecutive successes that mark a down target up again.",
    )
    paused = models.BooleanField(default=False)

    # Live state, written by each probe.
    status = models.CharField(max_length=8, choices=TargetStatus.choices, default=TargetStatus.UNKNOWN)
    status_since = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    consecutive_successes = models.PositiveIntegerField(default=0)
    last_probed_at = models.DateTimeField(null=True, blank=True)
    last_ok = models.BooleanField(null=True)
    last_latency_ms = models.FloatField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Scheduling: due when next_due_at has passed and no probe holds the lease.
    next_due_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    # Summary kept by the rollup job so the overview never reads history.
    uptime_24h = models.FloatField(null=True, blank=True)
    uptime_7d = models.FloatField(null=True, blank=True)
    uptime_30d = models.FloatField(null=True, blank=True)
    p95_24h_ms = models.FloatField(null=True, blank=True)
    sparkline = ArrayField(models.FloatField(null=True), default=list, blank=True)
    summary_updated_at = models.DateTimeField(null=True, blank=True)

    # Bumped on every change a page shows, so live polls can ask for "changed since".
    changed_at = models.DateTimeField(auto_now=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["environment", "kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "kind", "name"], name="one_target_per_resource"),
        ]
        indexes = [
            # Live polls of the overview: rows of one environment changed since the last poll.
            models.Index(fields=["environment", "changed_at"], name="target_env_changed"),
            # The dispatcher: due, unpaused targets in due order.
            models.Index(fields=["next_due_at"], condition=Q(paused=False), name="target_due"),
        ]

    def __str__(self) -> str:
        return self.display_name

    def get_absolute_url(self) -> str:
        return reverse("target-detail", args=[self.environment.slug, self.pk])

    def clean(self) -> None:
        # The name is used in API calls or fetched as a URL: check it for what this target will do with it.
        if self.kind == ProbeKind.API_HEALTH and self.health_method == HealthMethod.URL:
            validate = URLValidator(schemes=["http", "https"])
        else:
            validate = resource_name_validator
        try:
            validate(self.name)
        except ValidationError as error:
            raise ValidationError({"name": error.messages}) from error
        if not self.health_path.startswith("/"):
            raise ValidationError({"health_path": "The route starts with /, e.g. /health/dsql."})

    @property
    def display_name(self) -> str:
        return self.label or self.name

    @property
    def reports_cold_starts(self) -> bool:
        # Only an invoke's REPORT line says whether the function started cold.
        return self.kind == ProbeKind.API_HEALTH and self.health_method == HealthMethod.INVOKE

    @property
    def shown_status(self) -> str:
        return TargetStatus.PAUSED if self.paused else self.status


class ProbeResult(models.Model):
    """One probe's outcome, kept raw for PROBE_RAW_RETENTION (48 h by default)."""

    id = models.BigAutoField(primary_key=True)
    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="results", db_index=False)
    at = models.DateTimeField(help_text="When the probe started.")
    ok = models.BooleanField()
    latency_ms = models.FloatField(null=True, blank=True)
    # Milliseconds per phase: token/connect/query for DSQL, duration/init for an invoke, ...
    phases = models.JSONField(default=dict, blank=True)
    cold_start = models.BooleanField(null=True)
    error = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [
            # Target detail: the last hours of one target, newest first, paginated.
            models.Index(fields=["target", "-at"], name="result_target_at"),
            # The rollup and prune jobs: a time window across all targets. Rows arrive in time
            # order, so a BRIN index stays tiny where a B-tree would double the table.
            BrinIndex(fields=["at"], name="result_at_brin"),
        ]

    def __str__(self) -> str:
        return f"{self.target_id} {'ok' if self.ok else 'fail'} at {self.at:%Y-%m-%d %H:%M:%S}"


class Resolution(models.IntegerChoices):
    MINUTE = 60, "minute"
    HOUR = 3600, "hour"
    DAY = 86400, "day"


def encode_phase_sums(sums: dict[str, float]) -> str:
    """{"connect": 95.003, "query": 14.53} as "connect:95.003,query:14.53" (how a rollup stores them)."""
    for name in sums:
        if "," in name:
            raise ValueError(f"a phase name with a comma cannot be stored: {name!r}")
    return ",".join(f"{name}:{total!r}" for name, total in sums.items())


def decode_phase_sums(text: str) -> dict[str, float]:
    """The inverse of encode_phase_sums."""
    sums: dict[str, float] = {}
    if text:
        # A plain loop: a third faster than a comprehension over a generator, and a chart decodes 1,440.
        for item in text.split(","):
            name, _, total = item.rpartition(":")
            sums[name] = float(total)
    return sums


class PhaseSumsField(models.TextField):
    """Sums per phase name ({"connect": 95.003, ...}) as the text "connect:95.003,query:14.53,token:2.235":
    jsonb spends 4 bytes on each key and each value besides the number itself (12 bytes for 95.003), 83
    bytes for a DSQL probe's three phases, where this text takes 39 (JSON text would take 48). Nothing
    queries inside it; every reader wants the whole dict. Phase names are the probes' own words."""

    def from_db_value(self, value, expression, connection):
        return None if value is None else decode_phase_sums(value)

    def to_python(self, value):
        return decode_phase_sums(value) if isinstance(value, str) else value

    def get_prep_value(self, value):
        return value if value is None or isinstance(value, str) else encode_phase_sums(value)


class MicrosecondsField(models.IntegerField):
    """Milliseconds kept to the microsecond in a 4-byte integer, half a float8: the API and reports give
    latencies to three decimals, the pages to three significant figures, so none can tell. Up to 35 minutes,
    far beyond any probe's timeout; a longer value is stored as that (an overflow would fail the whole job)."""

    MAX = 2**31 - 1

    def from_db_value(self, value, expression, connection):
        return None if value is None else value / 1000

    def get_prep_value(self, value):
        return None if value is None else self.to_db(value)

    @classmethod
    def to_db(cls, ms: float) -> int:
        # Rounded as round(ms, 3) rounds (the decimal value), so that reading back gives exactly that.
        return min(cls.MAX, round(round(ms, 3) * 1000))


class TargetKey(models.ForeignKey):
    """A foreign key to a target held in 4 bytes (PostgreSQL checks it against the 8-byte id all the same).

    Target ids number the probed resources, thousands; what the narrower column buys is a rollup key of
    16 bytes, (target, resolution, bucket). Each target's rollups come in ascending, interleaved with every
    other target's; PostgreSQL fills a B-tree page to 90 % before splitting it where such a run ends only
    for keys of at most 16 bytes, and halves it otherwise, leaving the index half empty (70 bytes an entry
    for a 24-byte key, 34 for this one, with 20 targets' minutes inserted in turn)."""

    def db_type(self, connection):
        return "integer"


class RollupValues(models.Model):
    """What a rollup holds of one target's probe results in one bucket, mergeable into any longer range.

    Columns are declared widest first (8-byte ones, then 4, then 2, then the variable-length ones): PostgreSQL
    aligns each column to its size, and in the declared order they leave no padding between them."""

    bucket = models.DateTimeField(help_text="Start of the bucket (UTC).")
    latency_sum = models.FloatField(default=0)
    cold_latency_sum = models.FloatField(default=0)
    target = TargetKey(Target, on_delete=models.CASCADE, related_name="%(class)ss", db_index=False)
    count = models.IntegerField()
    ok_count = models.IntegerField()
    latency_count = models.IntegerField(default=0)
    cold_count = models.IntegerField(default=0)
    latency_min = MicrosecondsField(null=True, db_column="latency_min_us")
    latency_max = MicrosecondsField(null=True, db_column="latency_max_us")
    resolution = models.IntegerField(choices=Resolution.choices)  # seconds: 86,400 does not fit 2 bytes
    # This bucket's own quantiles, read off its histogram when it is written, as the index of the histogram
    # bucket they fall in (monitoring.histogram.bucket_value gives the milliseconds, exactly what a float
    # column held, in 2 bytes instead of 8): a chart of a year reads three numbers per day instead of
    # decoding and walking 365 histograms. NULL without latencies.
    p50_index = models.SmallIntegerField(null=True)
    p95_index = models.SmallIntegerField(null=True)
    p99_index = models.SmallIntegerField(null=True)
    # Sparse log-bucket histogram, three bytes per bucket holding any (index, count); see monitoring.histogram.
    histogram = models.BinaryField(default=bytes)
    # Sums per phase name, to average each phase over the bucket's latency_count.
    phase_sums = PhaseSumsField(default=dict)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.target_id} {self.get_resolution_display()} {self.bucket:%Y-%m-%d %H:%M}"


class Rollup(RollupValues):
    """A bucket the rollup job is done with: minute buckets as each minute settles, hour and day buckets once
    the job's cursor has passed them (moved here from FillingRollup). Written once, deleted by the prune job:
    rows are never rewritten, so the pages stay full and the indexes gain one entry per bucket.

    The primary key is the (target, resolution, bucket) the readers look rows up by: no surrogate id (8 bytes
    a row and an index of its own that nothing reads)."""

    pk = models.CompositePrimaryKey("target", "resolution", "bucket")

    class Meta:
        # The primary key's index is also that of the detail charts and the summary job: one target, one
        # resolution, a bucket range.
        indexes = [
            # The prune job: old buckets of one resolution across all targets.
            BrinIndex(fields=["bucket"], name="rollup_bucket_brin"),
        ]


class FillingRollup(RollupValues):
    """The hour and the day bucket each target is still filling: one row per target and resolution, rewritten
    by every run of the minute job (its bucket moves on with the cursor; rollup.py moves the finished one into
    Rollup). Kept apart so that the 60 and 1,440 versions a bucket goes through churn this small table, its
    updates HOT (the key never changes, and the migration leaves free space on each page for them), instead
    of leaving dead versions and index entries across the big one."""

    pk = models.CompositePrimaryKey("target", "resolution")


class Incident(models.Model):
    """A period during which a target was down, with the failure that opened it."""

    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="incidents")
    opened_at = models.DateTimeField(help_text="The first failed probe of the run that marked it down.")
    closed_at = models.DateTimeField(null=True, blank=True, help_text="The probe that marked it up again.")
    cause = models.TextField(help_text="The error of the first failed probe.")
    last_error = models.TextField(blank=True)
    failure_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(fields=["target"], condition=Q(closed_at=None), name="one_open_incident"),
        ]
        indexes = [
            # Overview and detail: a target's incidents, newest first; reports: incidents in a period.
            models.Index(fields=["target", "-opened_at"], name="incident_target_opened"),
            # Overview: open incidents of an environment's targets.
            models.Index(fields=["target"], condition=Q(closed_at=None), name="incident_open"),
        ]

    def __str__(self) -> str:
        return f"{self.target} down since {self.opened_at:%Y-%m-%d %H:%M}"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def duration_seconds(self, now=None) -> float:
        from django.utils import timezone

        end = self.closed_at or now or timezone.now()
        return max(0.0, (end - self.opened_at).total_seconds())


class RollupCursor(models.Model):
    """How far the rollup job has folded results into each resolution: complete buckets only."""

    resolution = models.IntegerField(choices=Resolution.choices, unique=True)
    done_until = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.get_resolution_display()} rollups done until {self.done_until:%Y-%m-%d %H:%M}"
