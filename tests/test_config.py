"""Drill settings: defaults, parsing, and one clear message per bad value naming the setting and an example."""

from __future__ import annotations

import pytest

from fixtures.config import (
    DEFAULT_REGIONS,
    OPTIONS,
    ConfigError,
    DrillConfig,
    Option,
    Scale,
    Threshold,
    parse_backends,
    parse_objectives,
    parse_regions,
    parse_scale,
    parse_sqld_args,
)


def test_defaults() -> None:
    config = DrillConfig.from_values({})
    assert config == DrillConfig()
    assert config.backends == ("auto",)
    assert config.scale == Scale(target_bytes=2_000_000)
    assert config.regions == parse_regions(DEFAULT_REGIONS)
    assert list(config.regions) == ["us-east", "eu-west"]
    assert (config.primary_region, config.offsite_region) == ("us-east", "eu-west")
    assert config.backup_interval == 2.0 and config.backup_retention_count == 5
    assert config.objectives == {}
    assert config.history == "file:.drills/history.jsonl"


def test_values_are_parsed() -> None:
    config = DrillConfig.from_values(
        {
            "backend": "process, container,process",
            "scale": "rows:300",
            "regions": "a=moto b=http://127.0.0.1:9000 c=moto",
            "backup_interval": "0.5",
            "backup_retention_count": "3",
            "objective": ["total-loss.rto_seconds=60\ntotal-loss.rpo_writes=10", " wal.rpo_seconds = 1.5 "],
        }
    )
    assert config.backends == ("process", "container")
    assert config.scale == Scale(customers=300)
    assert list(config.regions) == ["a", "b", "c"]
    assert config.offsite_region == "b"
    assert config.backup_interval == 0.5
    assert config.backup_retention_count == 3 and isinstance(config.backup_retention_count, int)
    assert config.objectives == {"total-loss": {"rto_seconds": 60.0, "rpo_writes": 10.0}, "wal": {"rpo_seconds": 1.5}}


# (setting, bad value, words naming the setting, words of an example)
BAD_VALUES = [
    ("backend", "kubernetes", "drill_backend='kubernetes'", "auto, container, process"),
    ("backend", " ", "drill_backend=", "auto, container, process"),
    ("scale", "lots", "drill_scale='lots'", "'2MB'"),
    ("scale", "0MB", "drill_scale='0MB'", "rows:5000"),
    ("scale", "500GB", "drill_scale='500GB'", "'1GB'"),
    ("scale", "rows:0", "drill_scale='rows:0'", "rows:5000"),
    ("scale", "99KB", "drill_scale='99KB'", "100KB to 100GB"),
    ("regions", "us-east=moto", "drill_regions='us-east=moto'", DEFAULT_REGIONS),
    ("regions", "us-east:moto eu-west=moto", "drill_regions item 'us-east:moto'", "'us-east=moto'"),
    ("regions", "us-east=ftp://x eu-west=moto", "drill_regions item 'us-east=ftp://x'", "https://host:port"),
    ("regions", "US=moto eu-west=moto", "drill_regions item 'US=moto'", "'us-east=moto'"),
    ("backup_interval", "0", "drill_backup_interval='0'", "e.g. 2.0"),
    ("backup_interval", "soon", "drill_backup_interval='soon'", "e.g. 2.0"),
    ("backup_retention_count", "2.5", "drill_backup_retention_count='2.5'", "e.g. 2"),
    ("backup_retention_count", "-1", "drill_backup_retention_count='-1'", "e.g. 2"),
    ("backup_retention_days", "never", "drill_backup_retention_days='never'", "e.g. 2.0"),
    ("writer_rate", "-3", "drill_writer_rate='-3'", "e.g. 2.0"),
    ("probe_interval", "", "drill_probe_interval=''", "e.g. 2.0"),
    ("startup_timeout", "0", "drill_startup_timeout='0'", "e.g. 2.0"),
    ("objective", ["total-loss.speed=3"], "drill_objective 'total-loss.speed=3'", "'total-loss.rto_seconds=60'"),
    ("objective", ["rto_seconds=3"], "drill_objective 'rto_seconds=3'", "'total-loss.rto_seconds=60'"),
    ("objective", ["total-loss.rto_seconds=fast"], "SCENARIO.METRIC=NUMBER", "'total-loss.rto_seconds=60'"),
]


@pytest.mark.parametrize(
    ("setting", "value", "names", "example"), BAD_VALUES, ids=[f"{b[0]}={b[1]!r}" for b in BAD_VALUES]
)
def test_bad_value_names_the_setting_and_an_example(
    setting: str, value: str | list[str], names: str, example: str
) -> None:
    with pytest.raises(ConfigError) as failure:
        DrillConfig.from_values({setting: value})
    message = str(failure.value)
    assert names in message
    assert example in message


PARSED = [opt for opt in OPTIONS if opt.parse is not str and not opt.multiple]


@pytest.mark.parametrize("option", PARSED, ids=[opt.name for opt in PARSED])
@pytest.mark.parametrize("value", ["nonsense", "-1"])
def test_every_parsed_setting_rejects_nonsense_by_name(option: Option, value: str) -> None:
    """Whatever settings are added, a bad value of each is a ConfigError that names the setting."""
    with pytest.raises(ConfigError, match=f"drill_{option.name}"):
        DrillConfig.from_values({option.name: value})


def test_every_default_parses() -> None:
    for opt in PARSED:
        opt.parse(opt.default)


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_scale("huge")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2MB", Scale(target_bytes=2_000_000)),
        ("100kb", Scale(target_bytes=100_000)),
        (" 1.5 GB ", Scale(target_bytes=1_500_000_000)),
        ("100GB", Scale(target_bytes=100_000_000_000)),
        ("rows:5000", Scale(customers=5000)),
    ],
)
def test_parse_scale(text: str, expected: Scale) -> None:
    assert parse_scale(text) == expected


def test_parse_backends_keeps_order_and_drops_duplicates() -> None:
    assert parse_backends("container,process container") == ("container", "process")


def test_parse_regions_keeps_order() -> None:
    regions = parse_regions("eu-west=https://s3.eu-west-1.amazonaws.com us-east=moto")
    assert list(regions.items()) == [("eu-west", "https://s3.eu-west-1.amazonaws.com"), ("us-east", "moto")]


def test_parse_objectives() -> None:
    assert parse_objectives([]) == {}
    assert parse_objectives(["total-loss.rto_seconds=60", "total-loss.rpo_seconds=2.5", "pitr.rpo_writes=0"]) == {
        "total-loss": {"rto_seconds": 60.0, "rpo_seconds": 2.5},
        "pitr": {"rpo_writes": 0.0},
    }
    assert parse_objectives(["x.rto_seconds=1", "x.rto_seconds=2"]) == {"x": {"rto_seconds": 2.0}}  # last wins


def test_compare_fail_is_parsed_once_into_thresholds() -> None:
    config = DrillConfig.from_values({"compare_fail": ["rto_seconds:20%, restore_seconds:1.5", "rpo_seconds:5"]})
    assert config.compare_fail == (
        Threshold("rto_seconds", 0.2, True),
        Threshold("restore_seconds", 1.5, False),
        Threshold("rpo_seconds", 5.0, False),
    )
    assert [t.spec for t in config.compare_fail] == ["rto_seconds:20%", "restore_seconds:1.5", "rpo_seconds:5"]
    with pytest.raises(ConfigError, match=r"^drill_compare_fail: regression threshold 'rto:fast' is not METRIC:LIMIT"):
        DrillConfig.from_values({"compare_fail": ["rto_seconds:20%", "rto:fast"]})


@pytest.mark.parametrize(
    ("scale", "label"),
    [
        (Scale(customers=5000), "rows:5000"),
        (Scale(target_bytes=2_000_000), "2MB"),
        (Scale(target_bytes=100_000), "0.1MB"),
        (Scale(target_bytes=1_500_000), "1.5MB"),
        (Scale(target_bytes=999_000_000), "999MB"),
        (Scale(target_bytes=1_000_000_000), "1GB"),
        (Scale(target_bytes=2_500_000_000), "2.5GB"),
    ],
)
def test_scale_label(scale: Scale, label: str) -> None:
    assert scale.label == label


def test_scale_label_round_trips_through_parse() -> None:
    for text in ("2MB", "1GB", "rows:42", "1.5MB"):
        assert parse_scale(parse_scale(text).label) == parse_scale(text)


def test_option_names() -> None:
    names = {opt.name: (opt.ini, opt.flag) for opt in OPTIONS}
    assert names["backup_interval"] == ("drill_backup_interval", "--drill-backup-interval")
    assert names["sqld_binary"] == ("drill_sqld_binary", "--drill-sqld-binary")


def test_sqld_args_are_shell_words_and_leave_the_runners_flags_alone() -> None:
    assert DrillConfig.from_values({}).sqld_args == ()
    assert parse_sqld_args("--checkpoint-interval-s 60 --max-log-size='200'") == (
        "--checkpoint-interval-s", "60", "--max-log-size=200",
    )  # fmt: skip
    for owned in ("--db-path /srv/db", "--http-listen-addr=0.0.0.0:8080", "--admin-listen-addr 127.0.0.1:1",
                  "--grpc-listen-addr 0.0.0.0:5001", "--enable-bottomless-replication"):  # fmt: skip
        with pytest.raises(ConfigError, match=r"^drill_sqld_args: --[a-z-]+ is set by the runner .*: remove it$"):
            parse_sqld_args(owned)
    with pytest.raises(ConfigError, match="fix the quoting"):
        parse_sqld_args("--x 'unclosed")
    with pytest.raises(ConfigError, match="must start with a flag"):
        parse_sqld_args("60 --checkpoint-interval-s")
