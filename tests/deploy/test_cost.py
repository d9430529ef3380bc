"""Cost against a moto server: `shipyard budget`, the prices of a region, `status`'s totals and `status --all`.

moto (5.2.5) answers Budgets' CreateBudget, DescribeBudget, DescribeNotificationsForBudget and DeleteBudget,
the Tagging API's GetResources, and every SageMaker, ECR, Logs, S3 and CloudWatch call `status --all` makes.
It lacks, and these tests script on the real boto3 client (a ``before-call`` handler: tests/infra/scripted_aws.py)
only: the Price List API's GetProducts (moto answers HTTP 500), with documents shaped as AWS's are; and
Budgets' DescribeSubscribersForNotification, answered with the subscribers CreateBudget was sent. Cost
Explorer's ListCostAllocationTags is not scripted: moto's failure is what `budget status` warns about.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import orjson
import pytest
from typer.testing import CliRunner

from infra.moto import ACCOUNT, REGION
from infra.scripted_aws import answer
from shipyard.cli import app
from shipyard.cli import budget as cli_budget
from shipyard.cli import deploy as cli_deploy
from shipyard.cloud import Aws
from shipyard.cloud.pricelist import hosting_price, price_list_region
from shipyard.deploy import Deployer
from shipyard.deploy.cost import CACHE_DAYS, cache_path, parse_budget, prices_for, set_budget
from shipyard.deploy.sagemaker import SageMakerTarget
from shipyard.deploy.state import Deployment, StateStore, now_utc
from shipyard.errors import SpecError
from shipyard.pricing import PRICE_LIST_SOURCE, prices, read_cached
from shipyard.settings import Settings

pytestmark = pytest.mark.integration

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
runner = CliRunner()


def _schema(name: str) -> dict[str, Any]:
    return dict(json.loads((SCHEMAS / name).read_text()))


# -- Price List documents as GetProducts returns them (one JSON string per product) ---------------------------
def product(instance: str, usd: str, *, region: str = REGION, usage: str | None = None, unit: str = "Hrs") -> str:
    prefix = {"us-east-1": "USE1", "eu-west-1": "EU"}[region]
    sku, term = f"SKU{abs(hash((instance, region, usage))) % 10**8:08d}", "JRTCKXETXF"
    return orjson.dumps(
        {
            "product": {
                "productFamily": "ML Instance",
                "attributes": {
                    "regionCode": region,
                    "servicecode": "AmazonSageMaker",
                    "servicename": "Amazon SageMaker",
                    "location": "US East (N. Virginia)" if region == "us-east-1" else "EU (Ireland)",
                    "locationType": "AWS Region",
                    "usagetype": usage or f"{prefix}-Host:{instance}",
                    "operation": "RunInstance",
                    "component": "Hosting",
                    "instanceName": instance,
                    "vCpu": "2",
                    "memory": "8 GiB",
                },
                "sku": sku,
            },
            "serviceCode": "AmazonSageMaker",
            "terms": {
                "OnDemand": {
                    f"{sku}.{term}": {
                        "priceDimensions": {
                            f"{sku}.{term}.6YS6EN2CT7": {
                                "unit": unit,
                                "endRange": "Inf",
                                "description": f"${usd} per Hosting {instance} hour",
                                "appliesTo": [],
                                "rateCode": f"{sku}.{term}.6YS6EN2CT7",
                                "beginRange": "0",
                                "pricePerUnit": {"USD": usd},
                            }
                        },
                        "sku": sku,
                        "effectiveDate": "2026-11-01T00:00:00Z",
                        "offerTermCode": term,
                        "termAttributes": {},
                    }
                }
            },
            "version": "20261120000000",
            "publicationDate": "2026-11-20T00:00:00Z",
        }
    ).decode()


def volume(region: str = REGION) -> str:
    """The hosting component's storage product: priced per GB-month, no instance (left out)."""
    document = orjson.loads(product("ml.m5.large", "0.14", region=region, unit="GB-Mo"))
    document["product"]["attributes"].pop("instanceName")
    document["product"]["attributes"]["usagetype"] = "USE1-Host:VolumeUsage.gp2"
    return orjson.dumps(document).decode()


def script_price_list(aws: Aws, *pages: list[str]) -> list[dict[str, Any]]:
    """GetProducts answered page by page (NextToken between them); the calls' parameters."""
    answers: list[dict[str, Any]] = [
        {"PriceList": page, "FormatVersion": "aws_v1", **({"NextToken": f"page{i + 2}"} if i < len(pages) - 1 else {})}
        for i, page in enumerate(pages)
    ]
    return answer(aws.client("pricing", region=price_list_region(aws.region)), "GetProducts", *answers)


@pytest.fixture
def settings(aws: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SHIPYARD_CACHE_DIR", str(tmp_path / "cache"))
    return Settings.from_env()


def test_a_price_list_document_parses_to_its_hourly_price() -> None:
    assert hosting_price(product("ml.m5.large", "0.1150000000")) == ("ml.m5.large", 0.115)
    assert hosting_price(volume()) is None  # storage, not an instance
    assert hosting_price(product("ml.m5.large", "0.10", usage="USE1-AsyncInf:ml.m5.large")) is None
    assert hosting_price(product("ml.m5.large", "0.0000000000")) is None  # a zero rate is no on-demand price
    assert [price_list_region(r) for r in ("us-west-2", "eu-west-1", "ap-northeast-1", "sa-east-1")] == [
        "us-east-1", "eu-central-1", "ap-south-1", "us-east-1"
    ]  # fmt: skip


def test_prices_come_from_the_price_list_api_cached_with_their_date_and_refreshed_when_stale(
    settings: Settings,
) -> None:
    aws = Aws(REGION)
    calls = script_price_list(
        aws,
        [product("ml.m5.large", "0.1150000000"), volume()],
        [product("ml.g5.xlarge", "1.4080000000"), product("ml.c5.large", "0.1020000000")],
    )
    table = prices_for(REGION, aws, settings)
    assert (table.source, table.region, table.as_of) == (PRICE_LIST_SOURCE, REGION, f"{now_utc():%Y-%m-%d}")
    assert table.instance_hourly == {"ml.m5.large": 0.115, "ml.g5.xlarge": 1.408, "ml.c5.large": 0.102}
    assert len(calls) == 2 and calls[1]["NextToken"] == "page2"  # every page
    assert calls[0]["ServiceCode"] == "AmazonSageMaker" and calls[0]["FormatVersion"] == "aws_v1"
    assert {(f["Field"], f["Value"], f["Type"]) for f in calls[0]["Filters"]} == {
        ("regionCode", REGION, "TERM_MATCH"), ("component", "Hosting", "TERM_MATCH")
    }  # fmt: skip

    # cached with the time it was read; a second estimate within CACHE_DAYS asks nothing
    cached = read_cached(cache_path(settings, REGION))
    assert cached is not None and cached[0].instance_hourly == table.instance_hourly
    assert now_utc() - cached[1] < timedelta(minutes=1)
    assert prices_for(REGION, aws, settings) == table and len(calls) == 2

    # stale: asked again, and the new answer replaces the cache
    later = now_utc() + timedelta(days=CACHE_DAYS, hours=1)
    again = Aws(REGION)  # a client of its own: a scripted client keeps its first script
    newer = script_price_list(again, [product("ml.m5.large", "0.1200000000")])
    fresh = prices_for(REGION, again, settings, now=later)
    assert len(newer) == 1 and fresh.instance_hourly == {"ml.m5.large": 0.12} and fresh.as_of == f"{later:%Y-%m-%d}"
    assert read_cached(cache_path(settings, REGION)) == (fresh, later)


def test_prices_of_another_region_are_asked_of_a_price_list_endpoint(settings: Settings) -> None:
    """eu-west-1 has no Price List endpoint: the client is eu-central-1's, the filter names eu-west-1."""
    aws = Aws("eu-west-1")
    calls = script_price_list(aws, [product("ml.m5.large", "0.1290000000", region="eu-west-1")])
    table = prices_for("eu-west-1", aws, settings)
    assert aws.client("pricing", region="eu-central-1").meta.region_name == "eu-central-1"
    assert table.instance_hourly == {"ml.m5.large": 0.129} and table.label == "eu-west-1 list prices of " + table.as_of
    assert {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "eu-west-1"} in calls[0]["Filters"]


def test_prices_fall_back_and_say_why(settings: Settings) -> None:
    """moto's own answer to GetProducts (HTTP 500, not scripted) is the failure."""
    shipped = prices()
    aws = Aws(REGION)
    table = prices_for(REGION, aws, settings)
    assert table.instance_hourly == shipped.instance_hourly and table.as_of == shipped.as_of
    assert table.source.startswith("the table shipped with Shipyard; the Price List API could not be read (")
    assert "GetProducts" in table.source
    assert not cache_path(settings, REGION).exists()  # a failure is not cached

    other = prices_for("eu-west-1", Aws("eu-west-1"), settings)
    assert other.source.startswith("the table shipped with Shipyard, not eu-west-1's; ") and other.region == REGION
    assert prices_for(REGION, None, settings).source.endswith("no AWS session to ask the Price List API")

    # a stale cache beats the shipped table when AWS cannot be asked, and says how old it is
    script = script_price_list(aws, [product("ml.m5.large", "0.1150000000")])
    prices_for(REGION, aws, settings)
    later = now_utc() + timedelta(days=CACHE_DAYS + 3)
    denied = Aws(REGION)
    answer(denied.client("pricing"), "GetProducts", ("AccessDeniedException", "not allowed: pricing:GetProducts", 400))
    stale = prices_for(REGION, denied, settings, now=later)
    assert len(script) == 1 and stale.instance_hourly == {"ml.m5.large": 0.115}
    assert stale.source.startswith(f"{PRICE_LIST_SOURCE}, cached {now_utc():%Y-%m-%d}; not refreshed: ")
    assert "AccessDeniedException" in stale.source


# -- status: $/hour, $ so far, the total and the source ---------------------------------------------------
def live_endpoint(name: str, instance_type: str = "ml.m5.large", count: int = 1, *, region: str = REGION) -> None:
    """What a deploy leaves billing, made straight in moto with the deployment's tag: model, config, endpoint,
    ECR repository, log group, the artifact under the S3 prefix, one alarm."""
    tags = [{"Key": "shipyard:deployment", "Value": name}]
    sm = boto3.client("sagemaker", region_name=region)
    role = f"arn:aws:iam::{ACCOUNT}:role/shipyard/shipyard-{name}"
    image = f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/shipyard/{name}:1"
    sm.create_model(ModelName=f"{name}-1", ExecutionRoleArn=role, PrimaryContainer={"Image": image}, Tags=tags)
    variant = {"VariantName": "AllTraffic", "ModelName": f"{name}-1", "InstanceType": instance_type,
               "InitialInstanceCount": count}  # fmt: skip
    sm.create_endpoint_config(EndpointConfigName=f"{name}-1", ProductionVariants=[variant], Tags=tags)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-1", Tags=tags)
    boto3.client("ecr", region_name=region).create_repository(repositoryName=f"shipyard/{name}", tags=tags)
    group = f"/aws/sagemaker/Endpoints/{name}"
    boto3.client("logs", region_name=region).create_log_group(logGroupName=group, tags={tags[0]["Key"]: name})
    s3 = boto3.client("s3", region_name=region)
    bucket = f"sagemaker-{region}-{ACCOUNT}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=f"shipyard/{name}/1/model.tar.gz", Body=b"model")
    boto3.client("cloudwatch", region_name=region).put_metric_alarm(
        AlarmName=f"shipyard-{name}-Invocation5XXErrors", MetricName="Invocation5XXErrors", Namespace="AWS/SageMaker",
        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold",
        Tags=tags,
    )  # fmt: skip


def record(name: str, instance_type: str = "ml.m5.large", count: int = 1, *, hours: float = 2.0) -> Deployment:
    created = (now_utc() - timedelta(hours=hours)).isoformat()
    dep = Deployment(name=name, target="sagemaker", status="InService", source="model/", created_at=created,
                     updated_at=created, region=REGION, instance_type=instance_type, instance_count=count)  # fmt: skip
    for kind, ident in (("model", f"{name}-1"), ("endpoint-config", f"{name}-1"), ("endpoint", name)):
        dep.add(kind, ident)
    return dep


def deployer_with_prices(state_path: Path, settings: Settings) -> tuple[Deployer, Aws]:
    aws = Aws(REGION)
    target = SageMakerTarget(aws=aws, poll_s=0.01, settings=settings)
    return Deployer(StateStore(state_path), targets={"sagemaker": target}, settings=settings), aws


def test_status_gives_hourly_so_far_and_the_total_with_their_source(
    settings: Settings, state_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live_endpoint("digits", "ml.m5.large", 2)
    live_endpoint("big", "ml.g4dn.xlarge", 1)
    deployer, aws = deployer_with_prices(state_path, settings)
    deployer.state.put(record("digits", "ml.m5.large", 2, hours=2.0))
    deployer.state.put(record("big", "ml.g4dn.xlarge", 1, hours=1.0))
    calls = script_price_list(aws, [product("ml.m5.large", "0.1150000000"), product("ml.g4dn.xlarge", "0.7360000000")])

    rows = {row.name: row for row in deployer.status()}
    assert len(calls) == 1  # one region, asked once for both
    assert rows["digits"].hourly_usd == pytest.approx(0.23) and rows["big"].hourly_usd == pytest.approx(0.736)
    assert rows["digits"].so_far_usd == pytest.approx(0.46, rel=1e-3)
    assert rows["big"].so_far_usd == pytest.approx(0.736, rel=1e-3)
    source = f"us-east-1 list prices of {now_utc():%Y-%m-%d} ({PRICE_LIST_SOURCE})"
    assert rows["digits"].price_source == rows["big"].price_source == source

    monkeypatch.setattr(cli_deploy, "deployer_for", lambda state, reporter=None: deployer)
    monkeypatch.setenv("COLUMNS", "200")
    done = runner.invoke(app, ["status", "--output", "json"])
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout)
    jsonschema.validate(document, _schema("status.v1.json"))
    assert document["total"]["hourly_usd"] == pytest.approx(0.966)
    assert document["total"]["so_far_usd"] == pytest.approx(0.46 + 0.736, rel=1e-3)
    assert document["total"]["partial"] is False
    assert document["price_sources"] == [source] and document["prices"] == source
    assert {d["name"]: d["price_source"] for d in document["deployments"]} == {"digits": source, "big": source}

    table = runner.invoke(app, ["status"])
    assert table.exit_code == 0, table.output
    assert "total: $0.966/hour now, $1.20 so far" in table.stdout
    assert f"prices: {source}" in table.stdout


def test_status_without_price_list_access_says_the_shipped_table_and_why(settings: Settings, state_path: Path) -> None:
    live_endpoint("digits")
    deployer, _aws = deployer_with_prices(state_path, settings)
    deployer.state.put(record("digits"))
    (row,) = deployer.status()
    assert row.hourly_usd == prices().hourly("ml.m5.large")
    assert row.price_source is not None and row.price_source.startswith(f"{prices().label} (the table shipped")
    assert "the Price List API could not be read" in row.price_source


# -- status --all: what still bills, recorded or not ------------------------------------------------------
def test_status_all_lists_a_recorded_deployment_and_an_orphan_with_what_bills(
    settings: Settings, state_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live_endpoint("digits", "ml.m5.large", 1)
    live_endpoint("ghost", "ml.m5.xlarge", 2)  # its record removed: only its tags say it is Shipyard's
    # what only the Tagging API finds (reconcile looks for the idle state machine by its name, not for this one): a
    # state machine of another name (moto's GetResources leaves EventBridge rules out, though ListTagsForResource
    # shows their tags, so no rule here)
    tags = [{"key": "shipyard:deployment", "value": "ghost"}]
    machine = boto3.client("stepfunctions").create_state_machine(
        name="shipyard-ghost-leftover", definition='{"StartAt": "x", "States": {"x": {"Type": "Succeed"}}}',
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/shipyard/shipyard-ghost.guard", tags=tags,
    )["stateMachineArn"]  # fmt: skip
    store = StateStore(state_path)
    store.put(record("digits"))
    store.put(record("ghost", "ml.m5.xlarge", 2))
    store.remove("ghost")
    before = state_path.read_bytes()
    monkeypatch.setenv("SHIPYARD_STATE", str(state_path))
    monkeypatch.setenv("COLUMNS", "200")

    done = runner.invoke(app, ["status", "--all", "--region", REGION, "--output", "json"])
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout)
    jsonschema.validate(document, _schema("status.v1.json"))
    assert [d["name"] for d in document["deployments"]] == ["digits"]  # the state file's view is unchanged
    bills = {entry["name"]: entry for entry in document["billing"]["deployments"]}
    assert {name: entry["state"] for name, entry in bills.items()} == {"digits": "recorded", "ghost": "orphan"}
    table = prices()  # moto has no Price List: the shipped table, and the source says so
    assert bills["ghost"]["hourly_usd"] == pytest.approx(2 * (table.hourly("ml.m5.xlarge") or 0))
    assert document["billing"]["hourly_usd"] == pytest.approx(
        (table.hourly("ml.m5.large") or 0) + 2 * (table.hourly("ml.m5.xlarge") or 0)
    )
    assert document["billing"]["price_source"].startswith(f"{table.label} (the table shipped with Shipyard")
    kinds = {(r["kind"], r["id"]) for r in bills["ghost"]["resources"]}
    bucket = f"sagemaker-{REGION}-{ACCOUNT}"
    assert kinds >= {
        ("endpoint", "ghost"), ("ecr-repository", "shipyard/ghost"), ("log-group", "/aws/sagemaker/Endpoints/ghost"),
        ("s3-prefix", f"s3://{bucket}/shipyard/ghost/"), ("alarm", "shipyard-ghost-Invocation5XXErrors"),
    }  # fmt: skip
    assert ("tagged", machine) in kinds
    assert not any(kind in {"model", "endpoint-config"} for kind, _ in kinds)  # they cost nothing
    assert not any(kind == "tagged" and ":sagemaker:" in ident for kind, ident in kinds)  # reconcile's already
    assert bills["ghost"]["remove"] == f"shipyard status --reconcile --region {REGION} && shipyard cleanup ghost"
    assert bills["digits"]["remove"] is None
    assert state_path.read_bytes() == before  # read-only

    shown = runner.invoke(app, ["status", "--all", "--region", REGION])
    assert shown.exit_code == 0, shown.output
    assert "what still bills in us-east-1" in shown.stdout and "orphan" in shown.stdout
    assert "ghost has no record here (an orphan): `shipyard status --reconcile" in shown.stdout


# -- shipyard budget ------------------------------------------------------------------------------------
def test_parse_budget_forms() -> None:
    assert parse_budget("10/month") == (10.0, "MONTHLY")
    assert parse_budget("$100/quarter") == (100.0, "QUARTERLY")
    assert parse_budget(" 1000.50 / Year ") == (1000.5, "ANNUALLY")
    for bad in ("10", "10/week", "month/10", "-5/month", "0/month", "ten/month", "10/month/x", "1.234/month"):
        with pytest.raises(SpecError) as caught:
            parse_budget(bad)
        assert caught.value.option == "amount" and "10/month, 100/quarter or 1000/year" in str(caught.value)
    with pytest.raises(SpecError, match="periods are month, quarter and year, not 'week'"):
        parse_budget("10/week")
    with pytest.raises(SpecError, match="above 0 USD"):
        parse_budget("0/month")


def test_more_addresses_than_an_alert_mails_are_refused_before_any_call() -> None:
    """Budgets takes at most 10 email subscribers per notification; refused after DeleteBudget, the old budget
    would be gone (no AWS call is made here: the session is never used)."""
    emails = [f"ops{i}@example.com" for i in range(11)]
    with pytest.raises(SpecError, match="at most 10") as caught:
        set_budget(None, "10/month", emails=emails)  # type: ignore[arg-type]
    assert caught.value.option == "notify"


def scripted_budgets(monkeypatch: pytest.MonkeyPatch) -> Aws:
    """The CLI's session, with DescribeSubscribersForNotification (moto lacks it) answered from what
    CreateBudget was sent."""
    aws = Aws(REGION)
    client = aws.client("budgets")
    sent: dict[str, Any] = {}

    def keep(params: dict[str, Any], **_: Any) -> None:
        sent["notifications"] = params.get("NotificationsWithSubscribers", [])

    def subscribers(params: dict[str, Any]) -> dict[str, Any]:
        for item in sent.get("notifications", []):
            if item["Notification"] == params["Notification"]:
                return {"Subscribers": item["Subscribers"]}
        return {"Subscribers": []}

    client.meta.events.register("before-parameter-build.budgets.CreateBudget", keep)
    answer(client, "DescribeSubscribersForNotification", subscribers)
    monkeypatch.setattr(cli_budget, "_aws", lambda region: aws)
    return aws


def test_budget_set_status_and_remove_through_the_cli(aws: object, monkeypatch: pytest.MonkeyPatch) -> None:
    scripted_budgets(monkeypatch)
    monkeypatch.setenv("COLUMNS", "200")
    budgets = boto3.client("budgets")

    done = runner.invoke(app, ["budget", "set", "10/month", "--notify", "ops@example.com"])
    assert done.exit_code == 0, done.output
    assert "budget shipyard created: 10/month" in done.stdout and "mail ops@example.com" in done.stdout
    budget = budgets.describe_budget(AccountId=ACCOUNT, BudgetName="shipyard")["Budget"]
    assert (budget["BudgetType"], budget["TimeUnit"], budget["BudgetLimit"]) == (
        "COST", "MONTHLY", {"Amount": "10.00", "Unit": "USD"}
    )  # fmt: skip
    assert budget["FilterExpression"] == {"Not": {"Tags": {"Key": "shipyard:deployment", "MatchOptions": ["ABSENT"]}}}
    assert budget["Metrics"] == ["UnblendedCost"] and "CostFilters" not in budget
    notes = budgets.describe_notifications_for_budget(AccountId=ACCOUNT, BudgetName="shipyard")["Notifications"]
    shapes = sorted((n["NotificationType"], n["Threshold"], n["ComparisonOperator"], n["ThresholdType"]) for n in notes)
    assert shapes == [
        ("ACTUAL", 80.0, "GREATER_THAN", "PERCENTAGE"), ("ACTUAL", 100.0, "GREATER_THAN", "PERCENTAGE"),
        ("FORECASTED", 100.0, "GREATER_THAN", "PERCENTAGE"),
    ]  # fmt: skip

    status = runner.invoke(app, ["budget", "status", "--output", "json"])
    assert status.exit_code == 0, status.output
    document = json.loads(status.stdout)
    jsonschema.validate(document, _schema("budget.v1.json"))
    found = document["budget"]
    assert (found["limit_usd"], found["time_unit"], found["actual_usd"], found["forecast_usd"]) == (
        10.0, "MONTHLY", 0.0, 0.0
    )  # fmt: skip
    assert found["filter"] == budget["FilterExpression"]
    assert [(a["type"], a["threshold_pct"], a["subscribers"]) for a in found["alerts"]] == [
        ("ACTUAL", 80.0, ["ops@example.com"]), ("ACTUAL", 100.0, ["ops@example.com"]),
        ("FORECASTED", 100.0, ["ops@example.com"]),
    ]  # fmt: skip
    (warning,) = found["warnings"]  # moto has no Cost Explorer ListCostAllocationTags
    assert warning.startswith("whether the tag filter works could not be checked (")
    assert "activate shipyard:deployment as a cost allocation tag" in warning

    shown = runner.invoke(app, ["budget", "status"])
    assert "budget shipyard: $10.00 per month" in shown.stdout
    assert "alert: forecasted > 100 % → ops@example.com" in shown.stdout and "warning: whether" in shown.stdout

    # set again: replaced (DeleteBudget + CreateBudget), here without alerts
    again = runner.invoke(app, ["budget", "set", "100/quarter"])
    assert again.exit_code == 0 and "budget shipyard replaced" in again.stdout and "no alerts" in again.stdout
    budget = budgets.describe_budget(AccountId=ACCOUNT, BudgetName="shipyard")["Budget"]
    assert (budget["TimeUnit"], budget["BudgetLimit"]["Amount"]) == ("QUARTERLY", "100.00")
    assert budgets.describe_notifications_for_budget(AccountId=ACCOUNT, BudgetName="shipyard")["Notifications"] == []
    quiet = json.loads(runner.invoke(app, ["budget", "status", "--output", "json"]).stdout)["budget"]
    assert quiet["alerts"] == [] and quiet["warnings"][0].startswith("no alerts: `shipyard budget set")

    removed = runner.invoke(app, ["budget", "remove"])
    assert removed.exit_code == 0 and "budget shipyard deleted" in removed.stdout
    assert budgets.describe_budgets(AccountId=ACCOUNT).get("Budgets", []) == []
    assert "was already gone" in runner.invoke(app, ["budget", "remove"]).stdout
    none = runner.invoke(app, ["budget", "status", "--output", "json"])
    assert json.loads(none.stdout) == {"schema": "shipyard.budget/1", "name": "shipyard", "budget": None}


def test_budget_refuses_bad_forms_before_calling_aws(aws: object, monkeypatch: pytest.MonkeyPatch) -> None:
    session = scripted_budgets(monkeypatch)
    for args, flag in ((["10/week"], "AMOUNT"), (["ten"], "AMOUNT"), (["10/month", "--notify", "ops"], "--notify")):
        done = runner.invoke(app, ["budget", "set", *args])
        assert done.exit_code != 0 and isinstance(done.exception, SpecError), done.output
        assert flag in str(done.exception)
    assert session.calls["budgets:CreateBudget"] == 0 and session.calls["budgets:DeleteBudget"] == 0


def test_a_dry_run_prices_the_endpoint_from_the_price_list(settings: Settings) -> None:
    """`deploy --dry-run`'s price label and the endpoint's monthly figure come from prices_for."""
    from shipyard.deploy.options import DeployOptions

    aws = Aws(REGION)
    script_price_list(aws, [product("ml.m5.large", "0.1200000000")])
    target = SageMakerTarget(aws=aws, settings=settings)
    plan = target.plan(DeployOptions(source="model/", name="digits", target="sagemaker", region=REGION, image="x:1"))
    assert plan.price_label == f"us-east-1 list prices of {now_utc():%Y-%m-%d} ({PRICE_LIST_SOURCE})"
    endpoint = next(item for item in plan.resources if item.kind == "SageMaker endpoint")
    assert endpoint.monthly_usd == pytest.approx(0.12 * prices().hours_per_month)
