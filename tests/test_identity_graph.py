"""Guards and clustering of the identity graph on tiny hand-made records."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from pyspark.sql import functions as F

from precis.config import IdentityConfig, IdTypeConfig
from precis.identity import graph, records, rules
from precis.identity.limits import greedy_clusters
from precis.identity.links import over_linked, record_links
from precis.identity.settings import WeakBridgeConfig

T0 = dt.datetime(2026, 1, 1)
OBS_SCHEMA = "source string, record_id string, id_type string, id_key string, id_status string, observed_at timestamp"


# Hand-made cases: (record_id, ["type:key", ...]) per record, plus optional identifiers
# seen only in events and operators' rules. All cases of one config are clustered in one
# call (their keys are prefixed by the case name, so they cannot touch each other).
CASES: dict[str, dict] = {
    "changed_phone": {
        "records": [
            ("r1", ["member_id:m1", "phone:+861", "email:a@x.cn"]),
            ("r2", ["member_id:m1", "phone:+862"]),  # the same member, a new phone
            ("r3", ["member_id:m2", "phone:+863"]),
        ]
    },
    "family": {
        "records": [
            ("crm1", ["member_id:m1", "phone:+861"]),
            ("crm2", ["member_id:m2", "phone:+862"]),
            ("crm3", ["member_id:m3", "phone:+863"]),
            ("s1", ["device_id:fam", "member_id:m1"]),
            ("s2", ["device_id:fam", "member_id:m1"]),
            ("s3", ["device_id:fam", "member_id:m2"]),
            ("s4", ["device_id:fam", "member_id:m2"]),
            ("s5", ["device_id:fam", "member_id:m3"]),
            ("s6", ["device_id:own", "member_id:m1"]),  # m1's own handset
            ("s7", ["device_id:own", "member_id:m1"]),
        ]
    },
    "majority": {
        "records": [  # 3 of 4 records with m1: a share of 0.75 >= 0.6
            ("s1", ["device_id:d", "member_id:m1"]),
            ("s2", ["device_id:d", "member_id:m1"]),
            ("s3", ["device_id:d", "member_id:m1"]),
            ("s4", ["device_id:d", "member_id:m2"]),
        ]
    },
    "hotline": {
        "records": [(f"pos{i}", ["phone:+8640080", f"member_id:m{i}"]) for i in range(7)]
        + [("crm", ["member_id:m0", "email:zero@x.cn"])]
    },
    "cafe": {
        "records": [(f"w{i}", ["cookie_id:cafe", f"email:u{i}@x.cn"]) for i in range(6)]
        + [("w9", ["cookie_id:home", "email:u0@x.cn"])]
    },
    "member_conflict": {
        "records": [  # an email typed into two member records: 3 say m1, 1 says m2
            ("a1", ["member_id:m1", "email:e@x.cn"]),
            ("a2", ["member_id:m1", "email:e@x.cn"]),
            ("a3", ["member_id:m1", "email:e@x.cn"]),
            ("b1", ["member_id:m2", "email:e@x.cn", "phone:+862"]),
            ("b2", ["member_id:m2", "phone:+862"]),
        ]
    },
    "weak_chain": {
        "records": [
            ("w1", ["open_id:o1", "union_id:u1"]),  # WeChat: open id -> union id
            ("a1", ["device_id:d1", "open_id:o1"]),  # app, not logged in: device -> open id
            ("b1", ["cookie_id:c1", "device_id:d2"]),  # an anonymous web-view visitor
        ]
    },
    "wechat_bridge": {
        "records": [  # an open id joins the WeChat union id to the app member
            ("w1", ["open_id:o1", "union_id:u1"]),
            ("w2", ["open_id:o1", "union_id:u1"]),
            ("a1", ["device_id:d1", "member_id:m1", "open_id:o1"]),
            ("c1", ["member_id:m1", "phone:+861"]),
        ]
    },
    "bridge_conflict": {
        "records": [  # an open id seen with two members joins only one
            ("a1", ["open_id:o2", "member_id:m1"]),
            ("a2", ["open_id:o2", "member_id:m1"]),
            ("a3", ["open_id:o2", "member_id:m2"]),
            ("c1", ["member_id:m1", "phone:+861"]),
            ("c2", ["member_id:m2", "phone:+862"]),
        ]
    },
    # A person's handset joins their member cluster and their WeChat cluster: seen with
    # each in two records, over overlapping days (records are a day apart, in order).
    "handset": {
        "records": [
            ("crm", ["member_id:m1", "phone:+861"]),
            ("wx", ["open_id:o1", "union_id:u1"]),
            ("s1", ["device_id:d", "member_id:m1"]),
            ("s2", ["device_id:d", "open_id:o1"]),
            ("s3", ["device_id:d", "member_id:m1"]),
            ("s4", ["device_id:d", "open_id:o1"]),
            ("s5", ["device_id:d"]),
        ]
    },
    # A handset and the cookie of its in-app browser, judged together: the cookie signs
    # in to the web with an email the CRM never saw, the handset to the app as a member.
    "in_app_browser": {
        "records": [
            ("crm", ["member_id:m1", "phone:+861"]),
            ("w1", ["cookie_id:c", "email:e@x.cn"]),
            ("a1", ["device_id:d", "member_id:m1"]),
            ("v1", ["cookie_id:c", "device_id:d"]),
            ("w2", ["cookie_id:c", "email:e@x.cn"]),
            ("a2", ["device_id:d", "member_id:m1"]),
        ]
    },
    # A couple's tablet, each logged in as a member: two member ids are two people.
    "couple": {
        "records": [
            ("s1", ["device_id:t", "member_id:m1"]),
            ("s2", ["device_id:t", "member_id:m2"]),
            ("s3", ["device_id:t", "member_id:m1"]),
            ("s4", ["device_id:t", "member_id:m2"]),
        ]
    },
    # A handset handed on: its days with the second owner begin 400 days after its last
    # with the first (records may give their day; by default the i-th is on day i).
    "sold_on": {
        "records": [
            ("wx", ["open_id:o1", "union_id:u1"]),
            ("s1", ["device_id:d", "member_id:m1"]),
            ("s2", ["device_id:d", "member_id:m1"]),
            ("s3", ["device_id:d", "open_id:o1"], 402),
            ("s4", ["device_id:d", "open_id:o1"], 403),
        ]
    },
    # One person's three logins, each its own cluster (a member id, WeChat, a web email
    # the CRM never saw), met only on their handset; the WeChat side first seen on it
    # 200 days after the member side's last day.
    "three_logins": {
        "records": [
            ("crm", ["member_id:m1", "phone:+861"]),
            ("wx", ["open_id:o1", "union_id:u1"]),
            ("web", ["email:e@x.cn", "cookie_id:c"]),
            ("s1", ["device_id:d", "member_id:m1"]),
            ("s2", ["device_id:d", "email:e@x.cn"]),
            ("s3", ["device_id:d", "member_id:m1"]),
            ("s4", ["device_id:d", "open_id:o1"], 203),
            ("s5", ["device_id:d"], 204),
        ]
    },
    # A family's tablet: a parent logged in as a member, a child through WeChat and a
    # third with a web email: three clusters, and two member ids among them.
    "family_of_three": {
        "records": [
            ("crm1", ["member_id:m1", "phone:+861"]),
            ("crm2", ["member_id:m2", "phone:+862"]),
            ("wx", ["open_id:o1", "union_id:u1"]),
            ("s1", ["device_id:t", "member_id:m1"]),
            ("s2", ["device_id:t", "member_id:m2"]),
            ("s3", ["device_id:t", "open_id:o1"]),
            ("s4", ["device_id:t", "member_id:m1"]),
            ("s5", ["device_id:t", "member_id:m2"]),
        ]
    },
    # An open id belongs to one union id: seen with two, it is unreliable.
    "open_id_two_unions": {
        "records": [
            ("w1", ["open_id:o1", "union_id:u1"]),
            ("w2", ["open_id:o1", "union_id:u2"]),
        ]
    },
    "events_only": {
        "records": [("r1", ["member_id:m1", "phone:+861"])],
        "events": ["cookie_id:lonely", "phone:+861"],
    },
    "rules": {
        "records": [
            ("r1", ["email:a@x.cn", "phone:+861"]),
            ("r2", ["phone:+861", "email:b@x.cn"]),
            ("r3", ["phone:+861", "email:b@x.cn"]),
            ("r4", ["cookie_id:c9"]),
            ("r5", ["member_id:m5"]),
        ],
        "rules": [
            ("never_link", "email:a@x.cn", "email:b@x.cn"),
            ("force_link", "cookie_id:c9", "member_id:m5"),
        ],
    },
}
# Cases run with STRICT: one phone per person, at most 3 identifiers per record.
STRICT_CASES: dict[str, dict] = {
    "strict_phone": {
        "records": [("r1", ["member_id:m1", "phone:+861"]), ("r2", ["member_id:m1", "phone:+862"])]
    },
    "oversized": {
        "records": [("big", ["cookie_id:a", "cookie_id:b", "cookie_id:c", "cookie_id:d"])]
    },
}
# Cases run with REPEATED: a weak bridge needs two records with each cluster.
REPEATED_CASES: dict[str, dict] = {
    # Seen with the WeChat person once only: not repeated evidence, so it attaches to the
    # member it was seen with most.
    "once": {
        "records": [
            ("wx", ["open_id:o1", "union_id:u1"]),
            ("s1", ["device_id:d", "member_id:m1"]),
            ("s2", ["device_id:d", "open_id:o1"]),
            ("s3", ["device_id:d", "member_id:m1"]),
            ("s4", ["device_id:d", "member_id:m1"]),
        ]
    },
}
REPEATED = IdentityConfig(weak_bridge=WeakBridgeConfig(min_records=2))
STRICT = IdentityConfig(
    types={"phone": IdTypeConfig(strength="strong", max_per_person=1, priority=3)},
    max_ids_per_record=3,
)


def _prefixed(case: str, ident: str) -> tuple[str, str]:
    id_type, key = ident.split(":", 1)
    return id_type, f"{case}/{key}"


def _resolve_cases(spark, cases: dict[str, dict], cfg: IdentityConfig) -> dict[str, tuple]:
    """Cluster all cases at once; per case: (set of frozensets of "type:key", isolated, audit)."""
    obs, events, rule_rows = [], [], []
    for case, spec in cases.items():
        for i, (record_id, ids, *day) in enumerate(spec["records"]):
            for ident in ids:
                obs.append(
                    (
                        "crm",
                        f"{case}/{record_id}",
                        *_prefixed(case, ident),
                        "ok",
                        T0 + dt.timedelta(days=day[0] if day else i),
                    )
                )
        for i, ident in enumerate(spec.get("events", ())):
            events.append((f"{case}/e{i}", T0, "app", *_prefixed(case, ident), "ok"))
        for kind, a, b in spec.get("rules", ()):
            rule_rows.append((kind, *_prefixed(case, a), *_prefixed(case, b)))
    silver = {"id_observations": spark.createDataFrame(obs, OBS_SCHEMA)}
    if events:
        silver["events"] = spark.createDataFrame(
            events,
            "event_id string, event_time timestamp, source string, id_type string, id_key string, id_status string",
        )
    recs = records.identified_records(silver)
    nodes = records.nodes(recs)
    links, _ = record_links(recs, cfg.max_ids_per_record)
    over = over_linked(links, cfg)
    blocked = over.select(
        "node", F.lit("over_linked").alias("guard"), F.lit("").alias("detail"), "records"
    )
    r = rules.empty(spark)
    if rule_rows:
        pairs = (
            spark.createDataFrame(
                rule_rows, "rule string, at string, ak string, bt string, bk string"
            )
            .select(
                "rule",
                records.node_id("at", "ak").alias("a"),
                records.node_id("bt", "bk").alias("b"),
            )
            .select("rule", F.least("a", "b").alias("src"), F.greatest("a", "b").alias("dst"))
        )
        r = rules.Rules(
            blocked=r.blocked,
            never=pairs.filter(F.col("rule") == "never_link").select("src", "dst"),
            force=pairs.filter(F.col("rule") == "force_link").select("src", "dst"),
            count=len(rule_rows),
        )
    clusters, audit = graph.resolve(
        nodes, links, cfg, blocked=blocked.unionByName(r.blocked), never=r.never, force=r.force
    )
    names = nodes.select("node", "id_type", "id_key")
    out: dict[str, tuple] = {case: ({}, set(), set()) for case in cases}

    def split(id_type: str, id_key: str) -> tuple[str, str]:
        case, key = id_key.split("/", 1)
        return case, f"{id_type}:{key}"

    for row in clusters.join(names, "node").collect():
        case, ident = split(row["id_type"], row["id_key"])
        out[case][0].setdefault(row["cluster"], set()).add(ident)
        if row["isolated"]:
            out[case][1].add(ident)
    for row in audit.join(names, "node").collect():
        case, ident = split(row["id_type"], row["id_key"])
        out[case][2].add((row["guard"], ident))
    return {
        case: ({frozenset(g) for g in groups.values()}, iso, aud)
        for case, (groups, iso, aud) in out.items()
    }


@pytest.fixture(scope="module")
def resolved(spark):
    return {
        **_resolve_cases(spark, CASES, IdentityConfig()),
        **_resolve_cases(spark, STRICT_CASES, STRICT),
        **_resolve_cases(spark, REPEATED_CASES, REPEATED),
    }


def test_crm_records_and_a_changed_phone_make_one_person(resolved):
    people, isolated, _ = resolved["changed_phone"]
    assert people == {
        frozenset({"member_id:m1", "phone:+861", "phone:+862", "email:a@x.cn"}),
        frozenset({"member_id:m2", "phone:+863"}),
    }
    assert isolated == set()


def test_family_device_shared_by_members_joins_none_of_them(resolved):
    people, isolated, audit = resolved["family"]
    assert people == {
        frozenset({"member_id:m1", "phone:+861", "device_id:own"}),
        frozenset({"member_id:m2", "phone:+862"}),
        frozenset({"member_id:m3", "phone:+863"}),
        frozenset({"device_id:fam"}),
    }
    assert isolated == {"device_id:fam"}
    assert ("weak_ambiguous", "device_id:fam") in audit


def test_weak_identifier_joins_the_person_with_most_evidence(resolved):
    people, _, _ = resolved["majority"]
    assert people == {frozenset({"member_id:m1", "device_id:d"}), frozenset({"member_id:m2"})}


def test_hotline_phone_on_many_members_links_nobody(resolved):
    people, isolated, audit = resolved["hotline"]
    expected = {frozenset({f"member_id:m{i}"}) for i in range(1, 7)}
    expected |= {frozenset({"member_id:m0", "email:zero@x.cn"}), frozenset({"phone:+8640080"})}
    assert people == expected
    assert isolated == {"phone:+8640080"}
    assert ("over_linked", "phone:+8640080") in audit


def test_cafe_cookie_with_many_emails_links_nobody(resolved):
    people, isolated, _ = resolved["cafe"]
    assert frozenset({"email:u0@x.cn", "cookie_id:home"}) in people
    assert frozenset({"cookie_id:cafe"}) in people
    assert isolated == {"cookie_id:cafe"}


def test_member_id_conflict_keeps_the_link_with_most_evidence(resolved):
    people, _, audit = resolved["member_conflict"]
    assert people == {
        frozenset({"member_id:m1", "email:e@x.cn"}),
        frozenset({"member_id:m2", "phone:+862"}),
    }
    refused = {ident for guard, ident in audit if guard == "type_limit"}
    # The refused links are m2-e and e-phone; each is reported at one of its ends.
    assert refused and refused <= {"member_id:m2", "email:e@x.cn", "phone:+862"}


def test_weak_identifiers_follow_each_other_and_stay_together_when_anonymous(resolved):
    people, _, _ = resolved["weak_chain"]
    assert people == {
        frozenset({"union_id:u1", "open_id:o1", "device_id:d1"}),
        frozenset({"cookie_id:c1", "device_id:d2"}),
    }


def test_bridging_open_id_joins_wechat_and_app_people(resolved):
    people, isolated, _ = resolved["wechat_bridge"]
    assert people == {
        frozenset({"union_id:u1", "open_id:o1", "member_id:m1", "phone:+861", "device_id:d1"})
    }
    assert isolated == set()


def test_bridging_open_id_never_joins_two_members(resolved):
    people, _, audit = resolved["bridge_conflict"]
    assert people == {
        frozenset({"member_id:m1", "phone:+861", "open_id:o2"}),
        frozenset({"member_id:m2", "phone:+862"}),
    }
    assert {guard for guard, _ in audit} == {"type_limit"}


def test_a_handset_seen_with_two_clusters_of_one_person_joins_them(resolved):
    people, isolated, audit = resolved["handset"]
    assert people == {
        frozenset({"member_id:m1", "phone:+861", "open_id:o1", "union_id:u1", "device_id:d"})
    }
    assert isolated == set()
    assert {(g, i) for g, i in audit if g == "weak_bridge"} == {("weak_bridge", "device_id:d")}


def test_weak_identifiers_linked_to_each_other_bridge_together(resolved):
    people, _, audit = resolved["in_app_browser"]
    assert people == {
        frozenset({"member_id:m1", "phone:+861", "email:e@x.cn", "cookie_id:c", "device_id:d"})
    }
    # One row per cluster joined, each at the identifier seen with it.
    assert {(g, i) for g, i in audit if g == "weak_bridge"} == {
        ("weak_bridge", "cookie_id:c"),
        ("weak_bridge", "device_id:d"),
    }


def test_a_shared_tablet_never_joins_two_members(resolved):
    people, isolated, audit = resolved["couple"]
    assert people == {
        frozenset({"member_id:m1"}),
        frozenset({"member_id:m2"}),
        frozenset({"device_id:t"}),
    }
    # The join was refused by the member id limit; neither holds 60% of its records.
    assert isolated == {"device_id:t"}
    assert ("weak_ambiguous", "device_id:t") in audit
    assert not any(g == "weak_bridge" for g, _ in audit)


def test_a_weak_identifier_seen_once_with_a_second_cluster_bridges_nothing(resolved):
    people, _, audit = resolved["once"]
    assert people == {
        frozenset({"member_id:m1", "device_id:d"}),
        frozenset({"open_id:o1", "union_id:u1"}),
    }
    assert not any(g == "weak_bridge" for g, _ in audit)


def test_a_handset_seen_with_three_logins_of_one_person_joins_them(resolved):
    people, isolated, audit = resolved["three_logins"]
    assert people == {
        frozenset(
            {
                "member_id:m1",
                "phone:+861",
                "open_id:o1",
                "union_id:u1",
                "email:e@x.cn",
                "cookie_id:c",
                "device_id:d",
            }
        )
    }
    assert isolated == set()
    assert {(g, i) for g, i in audit if g == "weak_bridge"} == {("weak_bridge", "device_id:d")}


def test_a_family_tablet_seen_with_three_clusters_joins_none_of_two_members(resolved):
    people, _, audit = resolved["family_of_three"]
    assert not any(len(p & {"member_id:m1", "member_id:m2"}) == 2 for p in people)
    assert frozenset({"member_id:m1", "phone:+861"}) in people
    assert frozenset({"member_id:m2", "phone:+862"}) in people
    assert frozenset({"open_id:o1", "union_id:u1"}) in people
    assert not any(g == "weak_bridge" for g, _ in audit)


def test_a_handset_sold_on_bridges_nothing(resolved):
    people, _, audit = resolved["sold_on"]
    assert (
        frozenset({"member_id:m1"}) in people
        or frozenset({"member_id:m1", "device_id:d"}) in people
    )
    assert not any(len(p & {"member_id:m1", "union_id:u1"}) == 2 for p in people)
    assert not any(g == "weak_bridge" for g, _ in audit)


def test_an_open_id_seen_with_two_union_ids_links_nothing(resolved):
    people, isolated, audit = resolved["open_id_two_unions"]
    assert people == {
        frozenset({"union_id:u1"}),
        frozenset({"union_id:u2"}),
        frozenset({"open_id:o1"}),
    }
    assert isolated == {"open_id:o1"}
    assert ("over_linked", "open_id:o1") in audit


def test_identifiers_seen_only_in_events_are_singletons(resolved):
    people, _, _ = resolved["events_only"]
    assert people == {frozenset({"member_id:m1", "phone:+861"}), frozenset({"cookie_id:lonely"})}


def test_operator_rules_force_and_forbid_links(resolved):
    people, _, audit = resolved["rules"]
    # a@ and b@ are never one person: the weaker link (a@ with the phone, one record) goes.
    assert people == {
        frozenset({"email:a@x.cn"}),
        frozenset({"phone:+861", "email:b@x.cn"}),
        frozenset({"cookie_id:c9", "member_id:m5"}),
    }
    assert ("never_link", "phone:+861") in audit or ("never_link", "email:a@x.cn") in audit
    assert ("force_link", "cookie_id:c9") in audit or ("force_link", "member_id:m5") in audit


def test_per_type_limits_are_configurable(resolved):
    people, _, _ = resolved["strict_phone"]
    # One phone per person: the most recent link wins, the older phone stays alone.
    assert people == {frozenset({"member_id:m1", "phone:+862"}), frozenset({"phone:+861"})}


def test_oversized_records_link_nothing(resolved):
    people, _, _ = resolved["oversized"]
    assert people == {frozenset({f"cookie_id:{c}"}) for c in "abcd"}


# ------------------------------------------------------------- the greedy rebuild itself
LINK_COLUMNS = [
    "kind",
    "src",
    "dst",
    "src_type",
    "dst_type",
    "weight",
    "last_seen",
    "forced",
    "tier",
]


def _greedy(links: list[tuple], limits: dict[str, int]) -> tuple[dict[int, int], list[tuple]]:
    """(node -> cluster, refused (guard, node, other)) for links (src, dst, types, weight, bridge)."""
    rows = [("link", a, b, ta, tb, w, 0, False, bridge) for a, b, ta, tb, w, bridge in links]
    out = list(greedy_clusters(pd.DataFrame(rows, columns=LINK_COLUMNS), limits))
    assigned = {node: cluster for kind, node, cluster, _, _ in out if kind == "node"}
    return assigned, [(kind, node, other) for kind, node, _, other, _ in out if kind != "node"]


def test_greedy_clusters_refuses_the_weakest_link_over_a_limit():
    assigned, refused = _greedy(
        [
            (1, 2, "member_id", "email", 5, False),
            (2, 3, "email", "member_id", 1, False),
            (3, 4, "member_id", "phone", 2, False),
        ],
        {"member_id": 1},
    )
    assert assigned == {1: 1, 2: 1, 3: 3, 4: 3}
    assert refused == [("type_limit", 2, 3)]


def test_greedy_clusters_takes_strong_links_before_heavier_bridging_ones():
    # Member 1 and email 2 share one record; open id 5 was seen 9 times with email 2 and
    # with member 3. By weight alone 5 would join 2 and 3 first and the strong 1-2 link
    # would be refused; strong links go first, so the open id's link to member 3 goes.
    assigned, refused = _greedy(
        [
            (5, 2, "open_id", "email", 9, True),
            (5, 3, "open_id", "member_id", 9, True),
            (1, 2, "member_id", "email", 1, False),
        ],
        {"member_id": 1},
    )
    assert assigned == {1: 1, 2: 1, 5: 1, 3: 3}
    assert refused == [("type_limit", 5, 3)]
