"""Which identifiers an incremental identity run reclusters (precis.identity.incremental)."""

from __future__ import annotations

from chispa import assert_df_equality

from precis.config import IdentityConfig
from precis.identity import incremental

RECORDS = "dataset string, source string, record_id string, nodes array<bigint>"
STATE = "node long, component long, blocked boolean"
LINKS = "src long, dst long"

# Previous run: components {1, 2, 3}, {4, 5}, {6}; 9 was blocked (over-linked), on its own.
STATE_ROWS = [
    (1, 1, False),
    (2, 1, False),
    (3, 1, False),
    (4, 4, False),
    (5, 4, False),
    (6, 6, False),
    (9, 9, True),
]
LINK_ROWS = [(1, 2), (2, 3), (4, 5), (5, 9), (6, 9)]


def _affected(spark, changed, blocked_now, links=LINK_ROWS) -> list[int]:
    state = spark.createDataFrame(STATE_ROWS, STATE)
    out = incremental.affected_nodes(
        state,
        spark.createDataFrame([(n,) for n in changed], "node long"),
        spark.createDataFrame([(n,) for n in blocked_now], "node long"),
        spark.createDataFrame(links, LINKS),
    )
    return sorted(r["node"] for r in out.collect())


def test_changed_records_are_new_gone_or_different(spark):
    before = spark.createDataFrame(
        [
            ("id_observations", "crm", "r1", [1, 2]),
            ("id_observations", "crm", "r2", [4, 5]),
            ("events", "events", "e1", [6]),
        ],
        RECORDS,
    )
    after = spark.createDataFrame(
        [
            ("id_observations", "crm", "r1", [1, 2]),  # unchanged
            ("id_observations", "crm", "r2", [4, 7]),  # other identifiers
            ("events", "events", "e2", [8]),
        ],  # new; e1 is gone
        RECORDS,
    )
    changed = incremental.changed_nodes(after, before)
    assert sorted(r["node"] for r in changed.collect()) == [4, 5, 6, 7, 8]


def test_a_touched_identifier_brings_its_whole_previous_component(spark):
    assert _affected(spark, changed=[2], blocked_now=[9]) == [1, 2, 3]
    # A new identifier (10) is reclustered with what its record touched.
    assert _affected(spark, changed=[10, 6], blocked_now=[9]) == [6, 10]


def test_nothing_changed_reclusters_nothing(spark):
    assert _affected(spark, changed=[], blocked_now=[9]) == []


def test_blocking_and_unblocking_an_identifier_touch_its_components(spark):
    # 5 became over-linked: its component {4, 5} is reclustered (4 is left on its own).
    assert _affected(spark, changed=[], blocked_now=[9, 5]) == [4, 5]
    # 9 is no longer blocked: it now links 5 and 6, so their components come along.
    assert _affected(spark, changed=[], blocked_now=[]) == [4, 5, 6, 9]


def test_raw_components_cut_at_blocked_identifiers_and_follow_forced_links(spark):
    nodes = spark.createDataFrame([(n,) for n in (1, 2, 3, 4, 5, 6, 9)], "node long")
    links = spark.createDataFrame(LINK_ROWS, LINKS)
    blocked = spark.createDataFrame([(9,)], "node long")
    force = spark.createDataFrame([(3, 4)], LINKS)
    out = incremental.raw_components(nodes, links, blocked, force, IdentityConfig())
    expected = spark.createDataFrame(
        [
            (1, 1, False),
            (2, 1, False),
            (3, 1, False),
            (4, 1, False),
            (5, 1, False),
            (6, 6, False),
            (9, 9, True),
        ],
        STATE,
    )
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)


def test_fingerprint_changes_with_settings_and_rules_only():
    base = IdentityConfig()
    same = incremental.fingerprint(base.model_copy(update={"checkpoint_interval": 5}), [])
    assert same == incremental.fingerprint(base, [])
    assert incremental.fingerprint(base.model_copy(update={"weak_min_share": 0.7}), []) != same
    assert incremental.fingerprint(base, [("never", 1, 2)]) != same
