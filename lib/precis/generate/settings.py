"""Settings of the synthetic data generator (the ``generate`` job).

Each default is written once, here; ``conf/base.yaml`` is generated from it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, model_validator

from precis.settings import Section

#: The knobs whose defaults depend on the world family (``generate.family``), with each
#: family's values. ``retail`` is the generator's original world: the login service's
#: sign-ins carry every verified contact of the account, so a person's strong
#: identifiers nearly always appear together. ``siloed`` is built by others' systems:
#: each source keeps its own login, and a person's clusters of strong identifiers are
#: joined only through weak ones (devices, cookies, WeChat open ids). The settings below
#: say what each knob does; docs/generate.md why each family has its values.
PRESETS: dict[str, dict[str, Any]] = {
    "retail": {
        "crm_email_share": 1.0,
        "signin_share": 0.95,
        "signin_contacts": "all",
        "wechat_phone_share": 0.7,
        "session_logins": "any",
        "app_member_login": 0.6,
        "app_wechat_login": 0.25,
        "household_size": 4,
        "family_everyone": False,
        "kiosk_share": 0.0,
        "cafe_share": 0.02,
        "placeholder_rate": 0.005,
        "hotline_rate": 0.08,
        "variant_rate": 0.4,
    },
    "siloed": {
        "crm_email_share": 0.5,
        "signin_share": 0.85,
        "signin_contacts": "one",
        "wechat_phone_share": 0.15,
        "session_logins": "one",
        "app_member_login": 0.3,
        "app_wechat_login": 0.4,
        "household_size": 2,
        "family_everyone": True,
        "kiosk_share": 0.03,
        "cafe_share": 0.01,
        "placeholder_rate": 0.01,
        "hotline_rate": 0.12,
        "variant_rate": 0.6,
    },
}
#: The default of a knob of ``PRESETS``: typed as the knob, since validation fills it.
FROM_FAMILY: Any = None


class GenerateConfig(Section):
    """Synthetic multi-source retail data with ground truth (the ``generate`` job).

    ``family`` is a preset: each knob of ``PRESETS`` left out or null takes its family's
    value when the model is validated; a value set explicitly wins. ``model_copy`` does
    not validate, so it never refills them: build a config of another family with
    ``GenerateConfig(family=..., ...)`` or ``model_validate``.
    """

    preset_fields = tuple(PRESETS["retail"])

    # Identifiers are bijections of the person index into 8 digits (two phones each), so
    # more people would make phone numbers collide.
    people: int = Field(20_000, gt=0, le=50_000_000)
    # Item ids are 6 digits.
    items: int = Field(2_000, gt=0, le=1_000_000)
    seed: int = 42
    # Replace landing folders that hold data this job did not write (real data, say).
    # Off: generate refuses to write where it would destroy someone else's files.
    replace_landing: bool = False
    # The generated period is the `days` days that end on `end_date` (null: the run date).
    days: int = Field(365, gt=0)
    end_date: dt.date | None = None
    # Share of landing rows to corrupt (unparsable timestamps, missing fields, ...).
    corrupt_fraction: float = Field(0.0, ge=0.0, le=0.5)
    # Landing files per dataset (fixed, so the same seed gives the same files).
    partitions: int = Field(4, gt=0)
    # The world family, a preset of the knobs shown as null below (each one's comment
    # gives both families' values): retail, whose login service joins each person's
    # identifiers, or siloed, whose sources each keep their own login (docs/generate.md).
    family: Literal["retail", "siloed"] = "retail"

    # --- who uses which source (shares of people)
    member_share: float = Field(0.7, ge=0.0, le=1.0)  # CRM members (member_id, customers row)
    email_share: float = Field(0.75, ge=0.0, le=1.0)  # people with an email address
    # Members whose CRM sign-up carries their email (retail 1.0; siloed 0.5: people
    # register on the web with an email the CRM never sees).
    crm_email_share: float = Field(FROM_FAMILY, ge=0.0, le=1.0)
    app_share: float = Field(0.55, ge=0.0, le=1.0)  # app users (1-3 devices each)
    web_share: float = Field(0.75, ge=0.0, le=1.0)  # web visitors (cookies that rotate)
    wechat_share: float = Field(0.5, ge=0.0, le=1.0)  # WeChat followers (open_id, union_id)
    # Share of people already active when the period starts (the rest arrive during it).
    existing_share: float = Field(0.5, ge=0.0, le=1.0)
    # Customers who opted out of marketing (consent_marketing = false).
    opt_out_share: float = Field(0.15, ge=0.0, le=1.0)
    # Consenting customers who withdraw during the period (a later customers row of their
    # member id: consent_marketing false, with its consent_updated_at), and the share of
    # those who grant it again later (another, later row).
    consent_withdraw_share: float = Field(0.05, ge=0.0, le=1.0)
    consent_regrant_share: float = Field(0.3, ge=0.0, le=1.0)
    # Cookies and app devices that sign in to an account (email, member id, or a phone
    # one-time code) when first used. The rest are anonymous unless a session logs in:
    # lower it for a world with more anonymous traffic (see docs/identity.md).
    # Retail 0.95, siloed 0.85.
    signin_share: float = Field(FROM_FAMILY, ge=0.0, le=1.0)
    # What a sign-in record carries besides the cookie, device or WeChat account. all
    # (retail): the account's verified contacts, member id, email and phone. one
    # (siloed): the one identifier that source logs in with: the web the email (else the
    # member id, else the phone), the app the member id (else the WeChat open id, else
    # the phone), the WeChat mini program nothing besides open_id and union_id.
    signin_contacts: Literal["all", "one"] = FROM_FAMILY
    # WeChat follows that carry the phone bound to the account (retail 0.7, siloed 0.15).
    wechat_phone_share: float = Field(FROM_FAMILY, ge=0.0, le=1.0)
    # How app sessions log in. any (retail): with the member id and WeChat independently,
    # sometimes both at once. one (siloed): one account per session, WeChat first (a
    # WeChat-logged-in checkout is paid by the open id).
    session_logins: Literal["any", "one"] = FROM_FAMILY
    # App browse sessions of members logged in with the member id (retail 0.6, siloed
    # 0.3; an app checkout always logs in).
    app_member_login: float = Field(FROM_FAMILY, ge=0.0, le=1.0)
    # App sessions of WeChat users logged in with WeChat (retail 0.25, siloed 0.4).
    app_wechat_login: float = Field(FROM_FAMILY, ge=0.0, le=1.0)
    # People who switch to a new phone number during the period.
    phone_change_share: float = Field(0.05, ge=0.0, le=1.0)
    # People who file a right-to-be-forgotten request (at least one request is always made).
    forget_share: float = Field(0.002, ge=0.0, le=1.0)

    # --- identity traps
    # Households (household_size people in a row) that share one family device in the app.
    family_share: float = Field(0.03, ge=0.0, le=1.0)
    # People per household (retail 4; siloed 2: couples share a tablet).
    household_size: int = Field(FROM_FAMILY, ge=2, le=10)
    # Every member of a device-sharing household uses the shared device, so is an app
    # user (siloed: both of a couple). Off (retail): only those who use the app anyway.
    family_everyone: bool = FROM_FAMILY
    # Members' app browse sessions on their store's kiosk (a demo device, one per store),
    # logged in as themselves (retail 0; siloed 0.03).
    kiosk_share: float = Field(FROM_FAMILY, ge=0.0, le=1.0)
    # Web users who also log in from an internet cafe whose cookie many people share
    # (retail 0.02, siloed 0.01).
    cafe_share: float = Field(FROM_FAMILY, ge=0.0, le=1.0)
    # Identifier values replaced by placeholders (all-zero device, 13800000000,
    # test@test.com, "undefined", "null"; retail 0.005, siloed 0.01).
    placeholder_rate: float = Field(FROM_FAMILY, ge=0.0, le=1.0)
    # POS receipts where staff typed the store hotline instead of the customer's phone
    # (retail 0.08, siloed 0.12).
    hotline_rate: float = Field(FROM_FAMILY, ge=0.0, le=1.0)
    # Identifiers written in a non-canonical form (+86, dashes, spaces, case, padding;
    # retail 0.4, siloed 0.6).
    variant_rate: float = Field(FROM_FAMILY, ge=0.0, le=1.0)

    # --- buying: BG/NBD purchases, Gamma-Gamma spend (time unit: days)
    buyer_share: float = Field(0.6, ge=0.0, le=1.0)  # people who make a first purchase
    # Purchase rate lambda ~ Gamma(shape r, rate alpha): mean r / alpha per day.
    btyd_r: float = Field(0.75, gt=0.0)
    btyd_alpha: float = Field(70.0, gt=0.0)
    # Dropout probability after each repeat purchase p ~ Beta(a, b): mean a / (a + b).
    btyd_a: float = Field(1.0, gt=0.0)
    btyd_b: float = Field(4.0, gt=0.0)
    # Order value ~ Gamma(shape spend_p, rate nu), nu ~ Gamma(spend_q, rate spend_gamma):
    # mean order value spend_p * spend_gamma / (spend_q - 1) CNY.
    spend_p: float = Field(6.0, gt=0.0)
    spend_q: float = Field(4.0, gt=1.0)
    spend_gamma: float = Field(150.0, gt=0.0)
    refund_rate: float = Field(0.05, ge=0.0, le=1.0)  # orders with status refunded
    offline_share: float = Field(0.3, ge=0.0, le=1.0)  # orders paid at a store (POS)

    # --- campaign experiments (docs/experiments.md), planted among CRM members
    # How many. Each enrolls members over a week, is judged 14 days after its last
    # enrolment, and the last one is still running at the end date. 0: none, and no
    # experiment dataset is landed (an earlier world's is emptied).
    experiments: int = Field(0, ge=0, le=100)
    # Share of the members seen by its start and still active that each one enrolls.
    experiment_share: float = Field(0.1, gt=0.0, le=1.0)
    # Participants' regular buying, from 28 days before their first enrolment to 14 days
    # after their last: orders per day ~ Gamma(shape, mean / shape). A low shape spreads
    # them widely, so pre-period spend predicts the outcome, as with real customers.
    experiment_rate: float = Field(0.05, ge=0.0)
    experiment_rate_shape: float = Field(0.15, gt=0.0)

    # --- campaign response and channel holdouts (docs/budget.md)
    # Paid channels cause orders: each day's caused orders per channel ~ Poisson(a planted
    # Hill curve of that day's spend), spread over everybody, each with a touch of the
    # channel just before it; daily spend varies from 0.2 to 1.8 times the channel's
    # budget so the curves can be seen. Off: spend varies 0.7 to 1.3 times and touches
    # only accompany purchases that happen anyway.
    response: bool = False
    # With response: each paid channel's holdout experiment (holdout_<channel>) enrolls
    # this share of the members seen by its start, half of whom the channel withholds
    # everything from in their 14-day window. 0: none.
    holdout_share: float = Field(0.0, ge=0.0, le=1.0)

    # --- browsing and marketing
    session_rate: float = Field(0.04, gt=0.0)  # mean online sessions per active day
    events_per_session: float = Field(3.5, ge=1.0)  # mean events in a browsing session
    touch_rate: float = Field(0.03, ge=0.0)  # mean marketing touches per active day
    # Share of purchases preceded by 1-3 touches drawn by channel effect.
    attributed_share: float = Field(0.8, ge=0.0, le=1.0)
    # Item popularity within a category ~ rank^-item_zipf (long tail).
    item_zipf: float = Field(1.1, gt=0.0)
    # Category preferences ~ Dirichlet(pref_alpha): small means few favourite categories.
    pref_alpha: float = Field(0.3, gt=0.0)
    # Share of views that ignore preferences (exploration), so tastes are learnable but noisy.
    explore_share: float = Field(0.2, ge=0.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _family_preset(cls, data: Any) -> Any:
        """The family's value for every preset knob left out or null."""
        if not isinstance(data, dict):
            return data
        # An unknown family is left to the field's own check, which names it.
        preset = PRESETS.get(data.get("family") or "retail", {})
        return {**data, **{k: v for k, v in preset.items() if data.get(k) is None}}

    @model_validator(mode="after")
    def _room_for_experiments(self) -> GenerateConfig:
        # 28 days of pre-period, a week of enrolment and a 14-day window, twice over.
        if self.experiments and self.days < MIN_EXPERIMENT_DAYS:
            raise ValueError(
                f"generate.experiments needs generate.days >= {MIN_EXPERIMENT_DAYS} "
                f"(got {self.days}): each experiment has a 28-day pre-period, a week of "
                "enrolment and a 14-day window"
            )
        if self.holdout_share and not self.response:
            raise ValueError(
                "generate.holdout_share needs generate.response: true (a holdout withholds "
                "the orders a channel causes)"
            )
        if self.holdout_share and self.days < MIN_EXPERIMENT_DAYS:
            raise ValueError(
                f"generate.holdout_share needs generate.days >= {MIN_EXPERIMENT_DAYS} "
                f"(got {self.days}): holdouts start {HOLDOUT_START_DAYS} days before the end"
            )
        return self


#: Channel holdouts start this many days before the end date: a week of enrolment and
#: the 14-day window close before it.
HOLDOUT_START_DAYS = 30
MIN_EXPERIMENT_DAYS = 60
